"""Permutation tests over language labels: Mantel, partial Mantel and the group test.

With few languages the number of distinct relabelings is small (9 languages: 9! = 362,880
permutations for a Mantel test, C(9, 3) = 84 groupings for a group of three), so every one is
enumerated when there are at most ``exact_limit`` of them; otherwise the identity plus
``n_random`` random relabelings are used. The p-value is the share of relabelings (identity
included) whose statistic is at least as extreme as the observed one, so it is never 0. Each
result also carries ``min_p``: the smallest p-value these data could give at all (the share of
relabelings tied with the most extreme one), which says how much evidence the design can hold.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

_TOL = 1e-10
_CHUNK = 50_000


@dataclass(frozen=True)
class TestResult:
    """Outcome of one permutation test."""

    statistic: float
    p_value: float
    n_permutations: int
    exact: bool
    min_p: float
    alternative: str  # "greater" (large statistic is evidence) or "less"

    def as_dict(self) -> dict[str, float | int | bool | str]:
        return {
            "statistic": self.statistic,
            "p_value": self.p_value,
            "n_permutations": self.n_permutations,
            "exact": self.exact,
            "min_p": self.min_p,
            "alternative": self.alternative,
        }


def _from_null(null: np.ndarray, observed: float, alternative: str, exact: bool) -> TestResult:
    """p-value from a null distribution whose first entry is the identity (observed)."""
    if not np.isfinite(observed):
        return TestResult(float("nan"), float("nan"), len(null), exact, float("nan"), alternative)
    tol, size = _TOL * max(1.0, abs(observed)), len(null)
    if alternative == "greater":
        p = np.count_nonzero(null >= observed - tol) / size
        best = np.count_nonzero(null >= np.nanmax(null) - tol) / size if exact else 1.0 / size
    else:
        p = np.count_nonzero(null <= observed + tol) / size
        best = np.count_nonzero(null <= np.nanmin(null) + tol) / size if exact else 1.0 / size
    return TestResult(float(observed), float(p), size, exact, float(best), alternative)


class LabelPermutations:
    """Relabelings of n languages, as indices into the upper triangle of an n x n matrix."""

    def __init__(self, n: int, exact_limit: int, n_random: int, seed: int) -> None:
        self.n = n
        self.exact = math.factorial(n) <= exact_limit
        if self.exact:
            perms = np.array(list(itertools.permutations(range(n))), dtype=np.int16)
        else:
            rng = np.random.default_rng(seed)
            rows = [np.arange(n)] + [rng.permutation(n) for _ in range(n_random)]
            perms = np.stack(rows).astype(np.int16)
        self.rows, self.cols = np.triu_indices(n, 1)
        pair_id = np.zeros((n, n), dtype=np.int32)
        pair_id[self.rows, self.cols] = np.arange(len(self.rows))
        pair_id = pair_id + pair_id.T
        # [N, n_pairs]: the pair that lands on pair k after relabeling (identity first)
        dtype = np.int16 if len(self.rows) < 2**15 else np.int32
        self.pair_index = np.concatenate(
            [
                pair_id[chunk[:, self.rows], chunk[:, self.cols]].astype(dtype)
                for chunk in np.array_split(perms, max(1, len(perms) // _CHUNK))
            ]
        )

    @staticmethod
    @functools.lru_cache(maxsize=2)
    def cached(n: int, exact_limit: int, n_random: int, seed: int) -> LabelPermutations:
        """A shared instance (building all 9! relabelings takes a moment)."""
        return LabelPermutations(n, exact_limit, n_random, seed)

    def triangle(self, matrix: np.ndarray) -> np.ndarray:
        """[..., n, n] -> [..., n_pairs] upper triangle (row-major)."""
        return np.asarray(matrix)[..., self.rows, self.cols]


def _standardise(values: np.ndarray, method: str) -> np.ndarray | None:
    values = rankdata(values) if method == "spearman" else np.asarray(values, dtype=np.float64)
    std = values.std()
    if not np.isfinite(std) or std == 0:
        return None
    return (values - values.mean()) / std


def _permuted_correlations(
    plan: LabelPermutations, x: np.ndarray, others: Sequence[np.ndarray]
) -> np.ndarray:
    """[N, len(others)] correlation of relabeled x with each standardised vector in others."""
    stacked = np.stack(others, axis=1)  # [n_pairs, k]
    out = np.empty((len(plan.pair_index), stacked.shape[1]))
    for start in range(0, len(plan.pair_index), _CHUNK):
        idx = plan.pair_index[start : start + _CHUNK]
        out[start : start + len(idx)] = x[idx] @ stacked / len(x)
    return out


def mantel_many(
    plan: LabelPermutations,
    dists: Sequence[np.ndarray],
    reference: np.ndarray,
    method: str = "spearman",
) -> list[TestResult]:
    """One-sided Mantel test of each distance matrix in ``dists`` against ``reference``.

    Relabeling the reference instead of each matrix gives the same null distribution (the set
    of relabelings is closed under inversion) and lets every matrix share one pass.
    """
    y = _standardise(plan.triangle(reference), method)
    xs = [_standardise(plan.triangle(d), method) for d in dists]
    valid = [k for k, x in enumerate(xs) if x is not None]
    nan = _from_null(np.array([np.nan]), float("nan"), "greater", plan.exact)
    if y is None or not valid:
        return [nan] * len(dists)
    # [len(valid), N]: each null contiguous
    null = np.ascontiguousarray(_permuted_correlations(plan, y, [xs[k] for k in valid]).T)
    out = [nan] * len(dists)
    for row, k in enumerate(valid):
        out[k] = _from_null(null[row], float(null[row, 0]), "greater", plan.exact)
    return out


def mantel(
    plan: LabelPermutations, dist_a: np.ndarray, dist_b: np.ndarray, method: str = "spearman"
) -> TestResult:
    """One-sided Mantel test that distances ``a`` and ``b`` are positively correlated."""
    return mantel_many(plan, [dist_a], dist_b, method)[0]


def partial_mantel(
    plan: LabelPermutations,
    dist_a: np.ndarray,
    dist_b: np.ndarray,
    dist_c: np.ndarray,
    method: str = "spearman",
) -> TestResult:
    """One-sided test of r(a, b | c), the correlation of a and b with c partialled out."""
    x = _standardise(plan.triangle(dist_a), method)
    y = _standardise(plan.triangle(dist_b), method)
    z = _standardise(plan.triangle(dist_c), method)
    if x is None or y is None or z is None:
        return _from_null(np.array([np.nan]), float("nan"), "greater", plan.exact)
    r_yz = float(y @ z / len(y))
    if abs(r_yz) >= 1.0 - 1e-12:
        return _from_null(np.array([np.nan]), float("nan"), "greater", plan.exact)
    r = _permuted_correlations(plan, x, [y, z])  # [N, 2]: r_xy, r_xz per relabeling
    with np.errstate(invalid="ignore", divide="ignore"):
        null = (r[:, 0] - r[:, 1] * r_yz) / np.sqrt((1 - r[:, 1] ** 2) * (1 - r_yz**2))
    return _from_null(null, float(null[0]), "greater", plan.exact)


def group_statistic(dist: np.ndarray, members: Sequence[int]) -> np.ndarray:
    """Mean within-group distance minus mean group-to-rest distance, over [..., n, n]."""
    n = dist.shape[-1]
    inside = np.zeros(n, dtype=bool)
    inside[list(members)] = True
    k = int(inside.sum())
    within_rows, within_cols = np.triu_indices(k, 1)
    block = dist[..., inside, :][..., :, inside]
    within = block[..., within_rows, within_cols].mean(axis=-1)
    between = dist[..., inside, :][..., :, ~inside].mean(axis=(-1, -2))
    return within - between


def group_test(
    dist: np.ndarray, members: Sequence[int], exact_limit: int, n_random: int, seed: int
) -> TestResult:
    """One-sided test that the members are closer to each other than to the rest.

    Relabeling languages is the same as choosing which k languages form the group, so the null
    distribution is the statistic over all C(n, k) groupings (or random ones when too many).
    """
    n, k = dist.shape[-1], len(members)
    exact = math.comb(n, k) <= exact_limit
    if exact:
        groupings = [list(members)] + [
            list(c) for c in itertools.combinations(range(n), k) if set(c) != set(members)
        ]
    else:
        rng = np.random.default_rng(seed)
        groupings = [list(members)] + [list(rng.permutation(n)[:k]) for _ in range(n_random)]
    indicator = np.zeros((len(groupings), n))  # [N, n]
    for row, group in enumerate(groupings):
        indicator[row, group] = 1.0
    d = np.array(dist, dtype=np.float64)
    np.fill_diagonal(d, 0.0)
    within_sum = np.einsum("si,ij,sj->s", indicator, d, indicator) / 2.0
    between_sum = np.einsum("si,ij,sj->s", indicator, d, 1.0 - indicator)
    null = within_sum / (k * (k - 1) / 2) - between_sum / (k * (n - k))
    return _from_null(null, float(null[0]), "less", exact)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN and does not count)."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid])]
    m, running = len(order), 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        out[idx] = running
    return out.tolist()
