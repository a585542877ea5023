"""One table over the expert counts E of scripts/granularity.sh (issue 13, expert granularity).

Reads, for every ROOT/e<E>/ run folder (main seed plus RUN/seeds/seed<N>/):
  partition.json/.safetensors   k-means labels and inertia
  profile.json/.safetensors     counts per language, layer and expert
  analysis/summary.json         group tests, shared experts, the seed study (ARI, ...)
  sweep/rows.jsonl              held-out perplexity: dense, sort and random at 25% removed
and computes what the summary does not hold, so that numbers compare across E:
  * clustering gain: 1 - inertia / (inertia expected of a random balanced partition), from the
    model's own up_proj rows (L2-normalised, as the split clusters them);
  * distance stability: the Jensen-Shannon distance matrix of every seed, recomputed from its
    profile (bits, over the flattened [L, E] frequency vector normalised to sum 1, as
    ``babelmoe analyse``), its coefficient of variation over seeds and the Spearman correlation
    of its 36 pairs between seeds;
  * group effect size: the group statistic (mean within - mean group-to-rest distance) as a
    z-score against all C(9, 3) = 84 groupings, and relative to the mean distance, because the
    exact permutation p-value has a floor of 1/84 = 0.012 that every E may hit.

Usage: .venv/bin/python scripts/granularity_table.py runs/granularity
Writes ROOT/granularity.json and ROOT/granularity.md and prints the Markdown table.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
from safetensors import safe_open
from scipy.stats import spearmanr

GROUPS = {"Romance": ("fra", "spa", "por"), "Indic": ("hin", "ben", "urd")}


def tensors(path: Path) -> dict[str, np.ndarray]:
    with safe_open(str(path), "np") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118


def seed_runs(run: Path) -> list[Path]:
    extra = sorted((run / "seeds").glob("seed*"), key=lambda p: int(p.name[4:]))
    return [run] + [p for p in extra if (p / "profile.json").is_file()]


def js_bits(freq: np.ndarray) -> np.ndarray:
    """[n, d] frequencies -> [n, n] Jensen-Shannon divergence in bits of the normalised rows."""
    p = freq / freq.sum(1, keepdims=True)

    def h(x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return -np.where(x > 0, x * np.log2(x), 0.0).sum(-1)

    n = len(p)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = h((p[i] + p[j]) / 2) - (h(p[i]) + h(p[j])) / 2
    return out


def profile_distance(run: Path) -> tuple[list[str], np.ndarray]:
    meta = json.loads((run / "profile.json").read_text())
    t = tensors(run / "profile.safetensors")
    freq = t["counts"].astype(np.float64) / t["tokens"].astype(np.float64)[:, None, None]
    codes = [lang["code"] for lang in meta["languages"]]
    return codes, js_bits(freq.reshape(len(codes), -1))


def group_z(dist: np.ndarray, members: list[int]) -> tuple[float, float, float]:
    """(statistic, z against all groupings of the same size, exact one-sided p)."""
    n, k = len(dist), len(members)
    stats = []
    for group in itertools.combinations(range(n), k):
        inside = np.zeros(n, dtype=bool)
        inside[list(group)] = True
        block = dist[np.ix_(inside, inside)]
        within = block[np.triu_indices(k, 1)].mean()
        between = dist[np.ix_(inside, ~inside)].mean()
        stats.append((set(group) == set(members), within - between))
    null = np.array([s for _, s in stats])
    observed = next(s for hit, s in stats if hit)
    return observed, (observed - null.mean()) / null.std(), float(np.mean(null <= observed))


def clustering_gain(run: Path, model_dir: Path) -> list[float]:
    """Per layer: 1 - inertia / E[inertia of a random balanced partition of the same rows]."""
    meta = json.loads((run / "partition.json").read_text())
    n_experts = meta["n_experts"]
    gains = []
    with safe_open(str(model_dir / "model.safetensors"), "np") as f:
        keys = {k for k in f.keys() if k.endswith("mlp.up_proj.weight")}  # noqa: SIM118
        for layer, inertia in enumerate(meta["inertia"]):
            key = next(k for k in keys if f".layers.{layer}.mlp." in k)
            w = f.get_tensor(key).astype(np.float64)
            w /= np.linalg.norm(w, axis=1, keepdims=True)
            total = float(((w - w.mean(0)) ** 2).sum())
            n = len(w)
            expected = total * (n - n_experts) / (n - 1)
            gains.append(1.0 - inertia / expected)
    return gains


def sweep_numbers(run: Path) -> dict:
    path = run / "sweep" / "rows.jsonl"
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines()[1:] if line.strip()]
    dense = {r["eval_lang"]: r["ppl"] for r in rows if r["method"] == "dense"}
    sort = {r["eval_lang"]: r["ppl"] for r in rows if r["method"] == "sort"}
    rand: dict[str, list[float]] = {}
    for r in rows:
        if r["method"] == "random":
            rand.setdefault(r["eval_lang"], []).append(r["ppl"])
    langs = [lang for lang in dense if lang in sort and lang in rand]
    if not langs:
        return {}

    def gmean(xs: list[float]) -> float:
        return float(math.exp(np.mean(np.log(xs))))

    return {
        "languages": langs,
        "dense": dense,
        "sort": sort,
        "random": rand,
        "sort_over_dense_gmean": gmean([sort[x] / dense[x] for x in langs]),
        "random_over_dense_gmean": gmean([gmean(rand[x]) / dense[x] for x in langs]),
        "sort_beats_every_random": sum(sort[x] < min(rand[x]) for x in langs),
    }


def partition_runs(run: Path) -> list[Path]:
    """The run and its seed folders that hold a partition (profiled or not)."""
    extra = sorted((run / "seeds").glob("seed*"), key=lambda p: int(p.name[4:]))
    return [p for p in [run, *extra] if (p / "partition.json").is_file()]


def ari(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two labelings of the same items."""
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(a, b))


def partition_agreement(runs: list[Path]) -> tuple[float | None, float | None]:
    """Mean and lowest ARI over seed pairs and layers."""
    labels = [tensors(r / "partition.safetensors")["labels"] for r in runs]
    scores = [
        ari(labels[a][layer], labels[b][layer])
        for a, b in itertools.combinations(range(len(labels)), 2)
        for layer in range(labels[0].shape[0])
    ]
    return (float(np.mean(scores)), float(np.min(scores))) if scores else (None, None)


def one(run: Path, model_dir: Path | None) -> dict:
    """Every number of one E that its artifacts allow (profile-based ones need a profile)."""
    parts = partition_runs(run)
    meta = json.loads((run / "partition.json").read_text())
    ari_mean, ari_min = partition_agreement(parts)
    gains = [np.mean(clustering_gain(r, model_dir)) for r in parts] if model_dir else []
    out: dict = {
        "n_experts": meta["n_experts"],
        "expert_size": meta["model"]["ffn_widths"][0] // meta["n_experts"],
        "partition_seeds": len(parts),
        "ari_mean": ari_mean,
        "ari_min": ari_min,
        "clustering_gain_mean": float(np.mean(gains)) if gains else None,
        "seeds": [],
        "distance_mean": None,
        "distance_cv_mean": None,
        "distance_rho_min": None,
        "groups": {},
        "shared": {},
        "sweep": sweep_numbers(run),
    }
    summary_path = run / "analysis" / "summary.json"
    if not summary_path.is_file():
        return out
    summary = json.loads(summary_path.read_text())
    stability = summary.get("stability") or {}
    runs = seed_runs(run)
    codes, dists = [], []
    for r in runs:
        codes, d = profile_distance(r)
        dists.append(d)
    stack = np.stack(dists)  # [S, n, n]
    iu = np.triu_indices(stack.shape[1], 1)
    pairs = stack[:, iu[0], iu[1]]  # [S, 36]
    rhos = [
        spearmanr(pairs[a], pairs[b])[0] for a, b in itertools.combinations(range(len(runs)), 2)
    ]
    for name, members in GROUPS.items():
        idx = [codes.index(c) for c in members]
        per_seed = [group_z(d, idx) for d in dists]
        out["groups"][name] = {
            "statistic": [s for s, _, _ in per_seed],
            "relative": [s / pairs[i].mean() for i, (s, _, _) in enumerate(per_seed)],
            "z": [z for _, z, _ in per_seed],
            "p_exact": [p for _, _, p in per_seed],
        }
    shared = summary["shared_experts"]
    out.update(
        seeds=[str(r) for r in runs],
        distance_mean=float(pairs.mean()),
        distance_cv_mean=float((pairs.std(0) / pairs.mean(0)).mean()) if len(runs) > 1 else None,
        distance_rho_min=float(min(rhos)) if rhos else None,
        shared={
            "total": shared["total"],
            "share": shared["share"],
            "peak_layer": shared["peak_layer"],
            "relative_depth": shared["relative_depth"],
            "relative_depth_ci": shared["relative_depth_ci"],
            "per_layer": shared["per_layer"],
            "peak_layers_per_seed": stability.get("shared_peak_layers"),
            "centres_per_seed": stability.get("shared_centres"),
        },
    )
    return out


def fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def markdown(results: list[dict]) -> str:
    lines = [
        "| E | neurons/expert | seeds (split / profiled) | k-means gain | ARI mean (min) "
        "| JS mean (bits) "
        "| JS CV over seeds | JS rank corr. min | Romance p (z) per seed "
        "| Indic p (z) per seed | shared share | shared peak layer / rel. depth "
        "| sort@25% / dense (gmean) | random@25% / dense | sort < every random |",
        "|" + "---|" * 15,
    ]
    for r in results:
        g = r["groups"]
        cell = {
            name: ", ".join(
                f"{p:.3f} ({z:.1f})" for p, z in zip(g[name]["p_exact"], g[name]["z"], strict=True)
            )
            if name in g
            else "-"
            for name in GROUPS
        }
        sh, sw = r["shared"], r["sweep"]
        lines.append(
            f"| {r['n_experts']} | {r['expert_size']} | "
            f"{r['partition_seeds']} / {len(r['seeds'])} | "
            f"{fmt(r['clustering_gain_mean'])} | {fmt(r['ari_mean'])} ({fmt(r['ari_min'])}) | "
            f"{fmt(r['distance_mean'], '.4f')} | {fmt(r['distance_cv_mean'])} | "
            f"{fmt(r['distance_rho_min'])} | {cell['Romance']} | {cell['Indic']} | "
            f"{fmt(sh.get('share'))} | {sh.get('peak_layer', '-')} / "
            f"{fmt(sh.get('relative_depth'), '.2f')} | "
            f"{fmt(sw.get('sort_over_dense_gmean'), '.2f')} | "
            f"{fmt(sw.get('random_over_dense_gmean'), '.1f')} | "
            f"{sw.get('sort_beats_every_random', '-')}/{len(sw.get('languages', []))} |"
        )
    return "\n".join(lines) + "\n"


def main(root: Path) -> None:
    cache = Path(os.environ.get("BABELMOE_CACHE", Path.home() / ".cache" / "babelmoe"))
    model_dir = next(iter(sorted((cache / "models").glob("gemma-3-270m*"))), None)
    results = []
    for run in sorted(root.glob("e*"), key=lambda p: int(p.name[1:])):
        if (run / "partition.json").is_file():
            results.append(one(run, model_dir))
    (root / "granularity.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (root / "granularity.md").write_text(table)
    sys.stdout.write(table)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/granularity"))
