"""Sweep rows -> curves, verdicts against random, the specificity matrix (pure; no I/O).

Verdict per (language, ratio, method): ``beats random`` when the method's perplexity is below
the *lowest* perplexity of the random seeds, ``worse than random`` when above the highest,
else ``within random spread``. With three seeds this is a descriptive criterion, not a
significance test (one seed in four would land below three others by chance).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np

from babelmoe.analysis.stats.dominance import dominance_test
from babelmoe.prune.criteria import frequency_methods
from babelmoe.prune.sweep import DENSE, RANDOM, SweepConfig

ROW_FIELDS = (
    "method",
    "ratio",
    "seed",
    "target",
    "eval_lang",
    "ppl",
    "nll_sum",
    "n_tokens",
    "bits_per_byte",
    "udhr_acc",
    "udhr_acc_norm",
    "udhr_n",
    "experts_removed",
    "expert_rate",
    "neurons_removed",
    "neuron_rate",
    "seconds",
)
CURVE_FIELDS = (
    "eval_lang",
    "method",
    "ratio",
    "ppl",
    "ppl_std",
    "ppl_min",
    "ppl_max",
    "n_seeds",
    "udhr_acc",
    "neuron_rate",
)
BEATS, WITHIN, WORSE = "beats random", "within random spread", "worse than random"


def curves(
    rows: Sequence[dict[str, Any]], config: SweepConfig, langs: Sequence[str]
) -> list[dict[str, Any]]:
    """Per (eval_lang, method, ratio) one point; random aggregated over its seeds."""
    out = []
    for lang in langs:
        dense = [r for r in rows if r["method"] == DENSE and r["eval_lang"] == lang]
        if dense:
            out.append(_point(lang, DENSE, 0.0, dense))
        for ratio in sorted(config.ratios):
            randoms = [
                r
                for r in rows
                if r["method"] == RANDOM and r["ratio"] == ratio and r["eval_lang"] == lang
            ]
            if randoms:
                out.append(_point(lang, RANDOM, ratio, randoms))
            for method in config.methods:
                own = [
                    r
                    for r in rows
                    if r["method"] == method
                    and r["ratio"] == ratio
                    and r["target"] == lang
                    and r["eval_lang"] == lang
                ]
                if own:
                    out.append(_point(lang, method, ratio, own))
    return out


def _point(lang: str, method: str, ratio: float, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    ppl = [float(r["ppl"]) for r in rows]
    acc = [r["udhr_acc"] for r in rows if r.get("udhr_acc") is not None]
    return {
        "eval_lang": lang,
        "method": method,
        "ratio": ratio,
        "ppl": statistics.fmean(ppl),
        "ppl_std": statistics.pstdev(ppl) if len(ppl) > 1 else 0.0,
        "ppl_min": min(ppl),
        "ppl_max": max(ppl),
        "n_seeds": len(ppl),
        "udhr_acc": statistics.fmean(acc) if acc else None,
        "neuron_rate": statistics.fmean(float(r["neuron_rate"]) for r in rows),
    }


def verdicts(
    points: Sequence[dict[str, Any]], config: SweepConfig, langs: Sequence[str]
) -> list[dict[str, Any]]:
    """Per (language, ratio, method): the method's perplexity against random's seed range."""
    index = {(p["eval_lang"], p["method"], p["ratio"]): p for p in points}
    out = []
    for lang in langs:
        for ratio in sorted(config.ratios):
            rand = index.get((lang, RANDOM, ratio))
            for method in config.methods:
                own = index.get((lang, method, ratio))
                if own is None:
                    continue
                verdict = _verdict(own["ppl"], rand)
                out.append(
                    {
                        "eval_lang": lang,
                        "ratio": ratio,
                        "method": method,
                        "frequency_guided": method in frequency_methods(),
                        "ppl": own["ppl"],
                        "random_mean": rand and rand["ppl"],
                        "random_std": rand and rand["ppl_std"],
                        "random_min": rand and rand["ppl_min"],
                        "random_max": rand and rand["ppl_max"],
                        "n_seeds": rand["n_seeds"] if rand else 0,
                        "verdict": verdict,
                    }
                )
    return out


def _verdict(ppl: float, rand: dict[str, Any] | None) -> str | None:
    if rand is None:
        return None
    return BEATS if ppl < rand["ppl_min"] else WORSE if ppl > rand["ppl_max"] else WITHIN


def pair_verdicts(judged: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (language, ratio): does frequency-guided pruning (its best method there) beat random
    beyond the seeds' spread?"""
    best: dict[tuple, dict[str, Any]] = {}
    for v in judged:
        key = (v["eval_lang"], v["ratio"])
        if v["frequency_guided"] and (key not in best or v["ppl"] < best[key]["ppl"]):
            best[key] = v
    return [
        {
            "eval_lang": v["eval_lang"],
            "ratio": v["ratio"],
            "best_method": v["method"],
            "ppl": v["ppl"],
            "random_min": v["random_min"],
            "random_max": v["random_max"],
            "verdict": v["verdict"],
        }
        for v in best.values()
    ]


def specificity(
    rows: Sequence[dict[str, Any]], config: SweepConfig, langs: Sequence[str]
) -> dict[str, Any] | None:
    """The matrix ppl[prune for A][evaluate on B] / dense ppl[B], whether each language is hurt
    least by pruning for itself (the diagonal is the lowest of its column), and the diagonal
    dominance of log(ratio) with its permutation p (``analysis.stats.dominance``, the statistic
    ``babelmoe steer`` uses; pruning *for* A keeps A's experts, so here the evidence is a
    negative dominance and the p-value is that of the diagonal being this low)."""
    method, ratio = config.matrix_method, config.matrix_ratio
    if method is None:
        return None
    got = {
        (r["target"], r["eval_lang"]): float(r["ppl"])
        for r in rows
        if r["method"] == method and r["ratio"] == ratio
    }
    dense = {r["eval_lang"]: float(r["ppl"]) for r in rows if r["method"] == DENSE}
    if not all((a, b) in got for a in langs for b in langs) or not all(b in dense for b in langs):
        return None
    ppl = [[got[(a, b)] for b in langs] for a in langs]
    relative = [[ppl[i][j] / dense[b] for j, b in enumerate(langs)] for i in range(len(langs))]
    best = {
        b: min(range(len(langs)), key=lambda i, j=j: ppl[i][j]) == j for j, b in enumerate(langs)
    }
    low = dominance_test(-np.log(np.array(relative))) if len(langs) > 1 else None
    return {
        "method": method,
        "ratio": ratio,
        "diagonal_dominance": -low.statistic if low else None,
        "diagonal_dominance_p": low.p_value if low else None,
        "targets": list(langs),
        "eval_langs": list(langs),
        "ppl": ppl,
        "relative_to_dense": relative,
        "diagonal_best": best,
        "share_diagonal_best": sum(best.values()) / len(best),
    }
