"""Statistics of the steering experiments: bootstrap intervals over prompts, repetition.

The diagonal dominance of the silencing matrix and its tests over languages live in
``babelmoe.analysis.stats.dominance`` (the pruning sweep's specificity matrix uses them too).
"""

from __future__ import annotations

import math

import numpy as np

from babelmoe.analysis.stats.bootstrap import percentile_interval


def bootstrap_mean(
    values: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``values`` [n] (one per prompt) and its percentile bootstrap interval."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(1)
    lo, hi = percentile_interval(means, level)
    return float(x.mean()), float(lo), float(hi)


def repetition_rate(tokens: list[int], n: int = 3) -> float:
    """Share of the token n-grams of a continuation that already occurred earlier in it (0 for
    fewer than n + 1 tokens): 0 = no repeated n-gram, near 1 = a loop."""
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if len(grams) < 2:
        return 0.0
    seen: set[tuple[int, ...]] = set()
    repeated = 0
    for gram in grams:
        repeated += gram in seen
        seen.add(gram)
    return repeated / len(grams)
