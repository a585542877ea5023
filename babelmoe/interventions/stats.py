"""Statistics of the interventions: diagonal dominance with a permutation p, bootstrap intervals.

Diagonal dominance of a square matrix M [A, B] (here the log of perplexity ratios: row = the
language whose experts were silenced, column = the language evaluated)::

    D(M) = mean_i M[i, i] - mean_{i != j} M[i, j]

D > 0 when silencing a language's experts hurts that language more than it hurts the others.
Its permutation p permutes the columns' language labels (which evaluated language is paired
with which silenced one): p = (1 + #{perm: D(M[:, perm]) >= D(M)}) / (1 + #perms), over every
permutation when there are at most ``EXACT_UP_TO`` languages, else over ``n_perm`` random ones.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

EXACT_UP_TO = 7  # 7! = 5040 permutations


def diagonal_dominance(matrix: np.ndarray) -> float:
    """D(M): mean of the diagonal minus mean of the off-diagonal entries (module docstring)."""
    m = np.asarray(matrix, dtype=np.float64)
    n = m.shape[0]
    if m.ndim != 2 or m.shape[1] != n or n < 2:
        raise ValueError(f"need a square matrix of at least 2 x 2, got {m.shape}")
    diag = np.trace(m) / n
    off = (m.sum() - np.trace(m)) / (n * n - n)
    return float(diag - off)


@dataclass(frozen=True)
class Dominance:
    """A diagonal-dominance test."""

    statistic: float
    p_value: float
    n_permutations: int
    exact: bool

    def to_json(self) -> dict[str, float | int | bool]:
        return {
            "statistic": self.statistic,
            "p_value": self.p_value,
            "n_permutations": self.n_permutations,
            "exact": self.exact,
        }


def dominance_test(matrix: np.ndarray, n_perm: int = 9999, seed: int = 0) -> Dominance:
    """D(M) and its one-sided permutation p over column labels (module docstring)."""
    m = np.asarray(matrix, dtype=np.float64)
    observed = diagonal_dominance(m)
    n = m.shape[0]
    total = m.sum()
    # D(M[:, perm]) = (1/n + 1/(n^2 - n)) * trace(M[:, perm]) - total / (n^2 - n)
    scale, shift = 1 / n + 1 / (n * n - n), total / (n * n - n)
    rows = np.arange(n)
    if n <= EXACT_UP_TO:
        perms = np.array(list(itertools.permutations(range(n))))
        exact = True
    else:
        rng = np.random.default_rng(seed)
        perms = np.array([rng.permutation(n) for _ in range(n_perm)])
        exact = False
    null = scale * m[rows[None, :], perms].sum(1) - shift  # [n_perm]
    tol = 1e-12 * max(1.0, abs(observed))
    if exact:
        p = float(np.mean(null >= observed - tol))
    else:
        p = float((1 + np.sum(null >= observed - tol)) / (1 + len(perms)))
    return Dominance(observed, p, len(perms), exact)


def bootstrap_mean(
    values: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``values`` [n] (one per prompt) and its percentile bootstrap interval."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
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
