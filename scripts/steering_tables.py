"""Tables of a ``babelmoe steer`` run for RESULTS.md's "Steering on a second sample of languages".

From RUN/interventions/{interventions.json,continuations.jsonl,selection.json}:

1. per factor, the tool's shares (target experts, unmodified, random experts, differences, 95%
   bootstrap intervals over (target, prompt) pairs);
2. target - random with target languages resampled (a cluster bootstrap: uncertainty over
   languages), and the paired fluency drop: the unmodified model's log-likelihood per token of
   the steered continuation minus that of the unmodified continuation of the same prompt;
3. per target, hits at each factor;
4. exploratory: the share of continuations whose main letter script
   (``babelmoe.corpus.languages.detect_script``) is the target's, for prompts in another script
   (neutral prompts count as Latin), target against random experts, split by Latin and
   non-Latin targets.

Usage: .venv/bin/python scripts/steering_tables.py RUN   (prints; writes nothing)
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from babelmoe.corpus.languages import detect_script

N_BOOT = 2000


def _boot(values, rng):
    x = np.asarray(values, float)
    means = x[rng.integers(0, len(x), (N_BOOT, len(x)))].mean(1)
    return x.mean(), np.quantile(means, 0.025), np.quantile(means, 0.975)


def _cluster_boot(groups, rng):
    arrays = [np.asarray(g, float) for g in groups]
    stats = [
        np.concatenate([arrays[i] for i in rng.integers(0, len(arrays), len(arrays))]).mean()
        for _ in range(N_BOOT)
    ]
    return np.concatenate(arrays).mean(), np.quantile(stats, 0.025), np.quantile(stats, 0.975)


def _pct(triple):
    m, lo, hi = (100 * v for v in triple)
    return f"{m:+.1f} ({lo:+.1f} to {hi:+.1f})"


def main(run: Path) -> None:
    rng = np.random.default_rng(0)
    folder = run / "interventions"
    summary = json.loads((folder / "interventions.json").read_text())
    steering = summary["steering"]
    labels = steering["labels"]
    groups = json.loads((folder / "selection.json").read_text())["null_groups"]
    rows = [json.loads(line) for line in (folder / "continuations.jsonl").open()]
    dense = {r["prompt_id"]: r for r in rows if r["condition"] == "dense"}
    random = {
        (r["target"], r["factor"], r["prompt_id"]): r
        for r in rows
        if r["condition"] == "random" and not r["silence_source"]
    }
    print(
        f"{run}: targets {steering['targets']}, prompts {summary['n_prompts']}; unmodified: "
        f"loglik {steering['dense_loglik']:.2f}, repetition {steering['dense_repetition']:.3f}, "
        f"identified as the prompt language {steering['dense_identified_as_prompt_language']:.3f}"
    )
    for p in steering["by_factor"]:
        if p["silence_source"]:
            continue
        f = p["factor"]
        print(
            f"x{f:g} (n={p['n_prompts']}): target {100 * p['share_own']:.1f}% "
            f"({100 * p['share_own_lo']:.1f}-{100 * p['share_own_hi']:.1f}), unmodified "
            f"{100 * p['share_dense']:.1f}%, random {100 * p['share_random']:.1f}%; "
            "target - random "
            f"{_pct((p['own_minus_random'], p['own_minus_random_lo'], p['own_minus_random_hi']))}"
            f", target - unmodified "
            f"{_pct((p['own_minus_dense'], p['own_minus_dense_lo'], p['own_minus_dense_hi']))}; "
            f"loglik target {p['loglik']:.2f}, random {p['random_loglik']:.2f}; repetition "
            f"{p['repetition']:.3f}"
        )
        diff, drop_own, drop_random = defaultdict(list), [], []
        for r in rows:
            a = r["target"]
            if r["condition"] != "own" or r["factor"] != f or r["prompt_lang"] == a:
                continue
            if r["silence_source"]:
                continue
            other = random[(groups[a], f, r["prompt_id"])]
            diff[a].append(float(r["lid"] == labels[a]) - float(other["lid"] == labels[a]))
            base = dense[r["prompt_id"]]["loglik_per_token"]
            if base is not None and r["loglik_per_token"] is not None:
                drop_own.append(r["loglik_per_token"] - base)
            if base is not None and other["loglik_per_token"] is not None:
                drop_random.append(other["loglik_per_token"] - base)
        print(
            f"   target - random over target languages {_pct(_cluster_boot(diff.values(), rng))}; "
            "paired fluency drop target {:.2f} ({:.2f} to {:.2f})".format(*_boot(drop_own, rng))
            + ", random {:.2f} ({:.2f} to {:.2f})".format(*_boot(drop_random, rng))
        )
    for p in steering["pooled"]:
        if not p["silence_source"]:
            print(
                f"   {p['target']} x{p['factor']:g}: {round(p['share_own'] * p['n_prompts'])}/"
                f"{p['n_prompts']} (unmodified {round(p['share_dense'] * p['n_prompts'])}, "
                f"random {round(p['share_random'] * p['n_prompts'])})"
            )
    script = {"neutral": "Latn"}
    for r in dense.values():
        if r["prompt_lang"] != "neutral":
            script.setdefault(r["prompt_lang"], detect_script(r["prompt"]))
    for f in [x for x in steering["factors"] if x != 1.0]:
        diff = defaultdict(list)
        split = {True: [0, 0, 0], False: [0, 0, 0]}  # Latin target?: own, random, n
        for r in rows:
            a = r["target"]
            if r["condition"] != "own" or r["factor"] != f or r["prompt_lang"] == a:
                continue
            if r["silence_source"] or script[r["prompt_lang"]] == script[a]:
                continue
            own = float(detect_script(r["continuation"]) == script[a])
            other = random[(groups[a], f, r["prompt_id"])]
            rand = float(detect_script(other["continuation"]) == script[a])
            diff[a].append(own - rand)
            counts = split[script[a] == "Latn"]
            counts[0] += int(own)
            counts[1] += int(rand)
            counts[2] += 1
        pairs = np.concatenate([np.asarray(v) for v in diff.values()])
        print(
            f"script x{f:g} (exploratory; {len(pairs)} pairs, prompt in another script): target's "
            f"script target - random {_pct(_boot(pairs, rng))}, over targets "
            f"{_pct(_cluster_boot(diff.values(), rng))}; Latin targets {split[True][0]}/"
            f"{split[True][2]} vs random {split[True][1]}/{split[True][2]}, non-Latin "
            f"{split[False][0]}/{split[False][2]} vs random {split[False][1]}/{split[False][2]}"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
