"""The silencing matrix: switch off language A's experts, measure the perplexity of every B.

Conditions (one row of results per condition and evaluated language B):

* ``dense``: nothing switched off;
* ``own`` (A): A's experts (``selection``) multiplied by 0;
* ``random`` (A, seed): as many random experts per layer as A's set holds (``random_like``);
  languages whose sets have the same per-layer counts (every language, with ``scope="layer"``
  and the ``excess`` rule) share one random set per seed (``null_groups``), evaluated once.

``silencing_summary`` turns the rows into the matrices ratio[A][B] = ppl / dense ppl of B, the
diagonal dominance of log(ratio) with its permutation p (``analysis.stats.dominance``) for A's
experts and for each random seed, and per language A how much more its own experts hurt it than
random ones of the same size. Given the languages' families (genera, scripts: ``blocks``), it
also tests the claim over languages: the dominance's bootstrap interval over languages and
without each family, its p with languages relabeled only within a family (genus): A's experts
hurt A more than A's relatives, and the spillover: the harm on A's relatives minus that on
unrelated languages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from babelmoe.analysis.stats.dominance import (
    beats_every_random,
    dominance_interval,
    dominance_test,
    family_out,
    restricted_dominance_test,
    spillover_test,
)
from babelmoe.analysis.stats.permutation import holm
from babelmoe.evaluate.perplexity import PerplexityConfig, PerplexityResult, perplexity
from babelmoe.experts.masks import scaled_experts
from babelmoe.experts.partition import Partition
from babelmoe.interventions.stats import bootstrap_mean

DENSE, OWN, RANDOM = "dense", "own", "random"
RESTRICTED_WITHIN = ("family", "genus")  # blocks of the restricted dominance tests
SPILLOVER_WITHIN = ("family", "genus", "script")  # blocks of the spillover tests


def masked_perplexities(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    partition: Partition,
    texts: dict[str, Sequence[str]],
    scales: torch.Tensor | None,
    config: PerplexityConfig,
    desc: str = "perplexity",
) -> dict[str, PerplexityResult]:
    """``masked_perplexity`` of every language of ``texts`` ({name: documents}), with the
    documents of all languages batched together (one ``perplexity`` call)."""
    owners = [lang for lang, docs in texts.items() for _ in docs]
    flat = [doc for docs in texts.values() for doc in docs]
    whole = masked_perplexity(model, tokenizer, partition, flat, scales, config, desc)
    out = {}
    for lang in texts:
        docs = [d for d, owner in zip(whole.documents, owners, strict=True) if owner == lang]
        out[lang] = PerplexityResult.of_documents(docs, config)
    return out


def masked_perplexity(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    partition: Partition,
    texts: Sequence[str],
    scales: torch.Tensor | None,
    config: PerplexityConfig,
    desc: str = "perplexity",
) -> PerplexityResult:
    """``perplexity`` of ``texts`` with every expert's activation scaled by ``scales`` [L, E]
    (0 = off; None = the dense model)."""
    with scaled_experts(model, partition, scales):
        return perplexity(model, tokenizer, list(texts), config, desc=desc)


def plan(
    targets: Sequence[str], seeds: Sequence[int], groups: dict[str, str]
) -> list[tuple[str, str | None, int | None]]:
    """(condition, target or null group, seed) of every model the matrix evaluates, dense
    first; ``groups``: each target's null group (``selection.null_groups``)."""
    jobs: list[tuple[str, str | None, int | None]] = [(DENSE, None, None)]
    jobs += [(OWN, a, None) for a in targets]
    unique = list(dict.fromkeys(groups[a] for a in targets))
    jobs += [(RANDOM, g, s) for s in seeds for g in unique]
    return jobs


def row_key(condition: str, target: str | None, seed: int | None, lang: str) -> str:
    return f"silence|{condition}|{target}|{seed}|{lang}"


def _matrix(rows: dict[str, dict], condition: str, keys: Sequence[str], names, seed, dense):
    return np.array(
        [[rows[row_key(condition, a, seed, b)]["ppl"] / dense[b] for b in names] for a in keys]
    )


def silencing_summary(
    rows: dict[str, dict[str, Any]],
    names: Sequence[str],
    seeds: Sequence[int],
    groups: dict[str, str],
    n_perm: int = 9999,
    blocks: dict[str, Sequence[str | None]] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The matrices and tests of a finished silencing run (module docstring); ``rows`` by
    ``row_key``, each with ``ppl``; ``groups``: each language's null group; ``blocks``: each
    language's family, genus and script ({"family": [one per name], ...}; None: no tests over
    relatives); ``n_boot``: bootstrap resamples of languages."""
    dense = {b: rows[row_key(DENSE, None, None, b)]["ppl"] for b in names}
    own = _matrix(rows, OWN, names, names, None, dense)
    own_test = dominance_test(np.log(own), n_perm=n_perm)
    random = [_matrix(rows, RANDOM, [groups[a] for a in names], names, s, dense) for s in seeds]
    random_tests = [dominance_test(np.log(m), n_perm=n_perm) for m in random]
    diag_own = np.log(np.diag(own))
    diag_random = np.array([np.log(np.diag(m)) for m in random]) if random else None
    per_language = []
    for i, a in enumerate(names):
        entry: dict[str, Any] = {
            "language": a,
            "dense_ppl": dense[a],
            "own_ratio": float(own[i, i]),
            "others_mean_ratio": float(
                math.exp(np.mean(np.log(np.delete(own[i], i)))) if len(names) > 1 else math.nan
            ),
        }
        if diag_random is not None:
            entry["random_ratio_mean"] = float(math.exp(diag_random[:, i].mean()))
            entry["random_ratio_max"] = float(math.exp(diag_random[:, i].max()))
            entry["own_beats_every_random"] = bool(diag_own[i] > diag_random[:, i].max())
        per_language.append(entry)
    summary: dict[str, Any] = {
        "languages": list(names),
        "dense_ppl": [dense[b] for b in names],
        "own_ratio": own.tolist(),
        "own_dominance": own_test.to_json(),
        "random_seeds": list(seeds),
        "null_groups": dict(groups),
        "random_ratio": [m.tolist() for m in random],
        "random_dominance": [t.to_json() for t in random_tests],
        "per_language": per_language,
    }
    if random and len(set(groups.values())) == 1:
        summary["random_dominance_note"] = (
            "every language shares each seed's random set: the random matrix has equal rows, so "
            "its dominance is 0 by construction (run with shared_null=False for a null of it)"
        )
    summary.update(_over_languages(np.log(own), blocks, n_perm, n_boot, seed))
    if random:
        # sign test: in how many languages do the own experts hurt more than every random set;
        # under exchangeability of the own set with the S random ones, P = 1 / (S + 1) each
        beats, n, p = beats_every_random(diag_own, diag_random)
        summary["own_beats_every_random_p"] = p
        summary["own_beats_every_random_n"] = beats
        summary["own_beats_every_random_of"] = n
        stats = np.array([t.statistic for t in random_tests])
        summary["random_dominance_mean"] = float(stats.mean())
        summary["random_dominance_max"] = float(stats.max())
        # how much more the own experts hurt their own language than random ones do (log scale)
        gap = diag_own - diag_random.mean(0)
        summary["own_minus_random_diag_log"] = gap.tolist()
        mean, lo, hi = bootstrap_mean(gap, n_boot=n_boot, seed=seed)  # languages resampled
        summary["own_minus_random_diag_log_mean"] = {"mean": mean, "lo": lo, "hi": hi}
        # every cell: log(own ratio) - mean over seeds of log(random ratio)
        excess = np.log(own) - np.mean([np.log(m) for m in random], axis=0)
        summary["own_minus_random_log"] = excess.tolist()
        summary["own_minus_random_dominance"] = dominance_test(excess, n_perm=n_perm).to_json()
        summary["share_own_beats_every_random"] = float(
            np.mean([e["own_beats_every_random"] for e in per_language])
        )
    summary["holm"] = holm_family(summary)
    return summary


def holm_family(summary: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The summary's tests as one Holm family ({test: {"p", "p_holm"}}): the dominance
    (unrestricted and within each block), the spillovers and the sign test, those that ran."""
    tests = {"dominance": summary["own_dominance"]["p_value"]}
    for test in summary.get("own_dominance_restricted", []):
        if test["feasible"]:
            tests[f"dominance_within_{test['within']}"] = test["p_value"]
    for test in summary.get("spillover", []):
        if test["feasible"]:
            tests[f"spillover_{test['within'].replace(' ', '_')}"] = test["p_value"]
    if "own_beats_every_random_p" in summary:
        tests["own_beats_every_random"] = summary["own_beats_every_random_p"]
    adjusted = holm(list(tests.values()))
    return {
        name: {"p": p, "p_holm": q} for (name, p), q in zip(tests.items(), adjusted, strict=True)
    }


def _over_languages(
    log_own: np.ndarray,
    blocks: dict[str, Sequence[str | None]] | None,
    n_perm: int,
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """The own-experts dominance as a claim about languages (module docstring)."""
    out: dict[str, Any] = {
        "own_dominance_interval": dominance_interval(log_own, n_boot, seed=seed).to_json()
    }
    if not blocks:
        return out
    out["language_blocks"] = {key: list(values) for key, values in blocks.items()}
    if "family" in blocks:
        out["own_dominance_family_out"] = family_out(log_own, blocks["family"])
    out["own_dominance_restricted"] = [
        restricted_dominance_test(log_own, blocks[key], key, n_perm, seed, n_boot).to_json()
        for key in RESTRICTED_WITHIN
        if key in blocks
    ]
    out["spillover"] = [
        spillover_test(log_own, blocks[key], key, n_perm, n_boot, seed=seed).to_json()
        for key in SPILLOVER_WITHIN
        if key in blocks
    ]
    if "family" in blocks and "script" in blocks:  # relatives' shared harm not via the script
        out["spillover"].append(
            spillover_test(
                log_own, blocks["family"], "family", n_perm, n_boot, seed=seed,
                apart=blocks["script"], apart_name="script",
            ).to_json()
        )  # fmt: skip
    return out
