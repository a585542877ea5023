"""Diagonal dominance of an intervention matrix, as a claim about languages.

M [n, n] is e.g. the log of perplexity ratios: row a = the language whose experts were switched
off, column b = the language evaluated. The statistic::

    D(M) = mean_a M[a, a] - mean_{a != b} M[a, b]

is > 0 when switching off a language's experts hurts that language more than the others.

- :func:`dominance_test`: one-sided permutation p of D over the columns' language labels
  (which evaluated language is paired with which silenced one): every permutation up to
  ``EXACT_UP_TO`` languages, else ``n_perm`` random ones, p = (1 + #{D(M[:, perm]) >= D(M)}) /
  (1 + n_perm). It treats every language as exchangeable with every other one, so when
  relatives share the harm (Galton's problem) it is optimistic.
- :func:`restricted_dominance_test`: the same statistic with the column labels moved only within
  blocks (a language family, a genus; ``language_resampling.BlockPermutations``): a language is
  only ever swapped with a relative, so the p-value asks whether *A's experts hurt A more than
  they hurt A's relatives*. Languages without a relative stay in place in every relabeling (their
  diagonal is a constant), so only the languages with a relative carry evidence.
  ``relatives`` is its effect size, per language: M[a, a] minus the mean of M[a, b] over a's
  relatives b, averaged over the languages that have one (each language weighs the same, as in
  the test; a pooled mean over relative pairs would let the large families speak for all), with
  a bootstrap interval over those languages and the share of them where it is positive.
- :func:`dominance_interval`: percentile bootstrap interval of D over languages: n languages are
  drawn with replacement (rows and columns together), a drawn language weighs as often as it was
  drawn, the diagonal mean weighs a by w_a and the off-diagonal mean weighs the original pair
  (a, b), a != b, by w_a w_b (a language and its own copy are no pair, as in
  ``language_resampling``); ``family_out`` gives D without each family in turn.
- :func:`spillover_test`: how much more the harm of A's experts falls on A's relatives than on
  unrelated languages: mean M[a, b] over pairs a != b in the same block minus mean over pairs in
  different blocks. Its null relabels languages (block labels shuffled over the languages, block
  sizes kept, rows and columns move together). ``adjusted`` is the same statistic on the
  residual of additive row and column effects fitted on the off-diagonal cells (how harmful a
  language's set is to everything, how fragile a language is to any cut): same-block harm
  beyond what those predict, so that a family of fragile languages is no spillover by itself.
  With ``apart`` (the scripts), only pairs of different scripts count: relatives' shared harm
  that does not go through a shared script.
- :func:`beats_every_random`: in how many languages the own value beats every random one, with
  the one-sided binomial (sign) test at P = 1 / (S + 1) each (S random sets, exchangeable with
  the own set under the null). Languages that share random sets are not independent trials.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import binom

from babelmoe.analysis.stats import language_resampling as lr
from babelmoe.analysis.stats.bootstrap import percentile_interval

EXACT_UP_TO = 7  # 7! = 5040 permutations
EXACT_LIMIT = 100_000  # listed relabelings of a restricted or spillover test
_TOL = 1e-12
_CHUNK = 512  # relabelings per chunk of the spillover null (chunk x n x n booleans)


def _square(matrix: np.ndarray) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] != m.shape[0] or m.shape[0] < 2:
        raise ValueError(f"need a square matrix of at least 2 x 2, got {m.shape}")
    return m


def diagonal_dominance(matrix: np.ndarray) -> float:
    """D(M): mean of the diagonal minus mean of the off-diagonal entries (module docstring)."""
    m = _square(matrix)
    n = m.shape[0]
    diag = np.trace(m) / n
    off = (m.sum() - np.trace(m)) / (n * n - n)
    return float(diag - off)


def _column_null(m: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """[N] D(M[:, perm]) of every row of ``perms`` [N, n]."""
    n = m.shape[0]
    # D(M[:, perm]) = (1/n + 1/(n^2 - n)) * trace(M[:, perm]) - total / (n^2 - n)
    scale, shift = 1 / n + 1 / (n * n - n), m.sum() / (n * n - n)
    rows = np.arange(n)
    return scale * m[rows[None, :], perms].sum(1) - shift


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
    m = _square(matrix)
    observed = diagonal_dominance(m)
    n = m.shape[0]
    if n <= EXACT_UP_TO:
        perms = np.array(list(itertools.permutations(range(n))))
        exact = True
    else:
        rng = np.random.default_rng(seed)
        perms = np.array([rng.permutation(n) for _ in range(n_perm)])
        exact = False
    null = _column_null(m, perms)
    tol = _TOL * max(1.0, abs(observed))
    if exact:
        p = float(np.mean(null >= observed - tol))
    else:
        p = float((1 + np.sum(null >= observed - tol)) / (1 + len(perms)))
    return Dominance(observed, p, len(perms), exact)


def _blocks(labels: Sequence[Hashable | None]) -> list[Hashable | None]:
    return [None if b is None or b == "" else b for b in labels]


def _block_keys(labels: Sequence[Hashable | None]) -> list[Hashable]:
    """One key per language: its block, or a block of its own for None."""
    return [("<own>", i) if b is None else b for i, b in enumerate(_blocks(labels))]


def _relatives(labels: Sequence[Hashable | None]) -> np.ndarray:
    """[n, n] bool: a != b in the same block (a block of None is the language's own)."""
    keys = _block_keys(labels)
    same = np.array([[x == y for y in keys] for x in keys])
    np.fill_diagonal(same, False)
    return same


@dataclass(frozen=True)
class RestrictedDominance:
    """D(M) tested with column labels permuted only within blocks (module docstring)."""

    within: str
    statistic: float  # D(M), as in the unrestricted test
    relatives: float  # mean over languages with a relative of own minus their relatives' mean
    relatives_lo: float  # its bootstrap interval over those languages
    relatives_hi: float
    share_above_relatives: float  # languages whose own value is above their relatives' mean
    n_with_relatives: int
    n_blocks: int
    largest_blocks: list[int]
    n_relabelings: float  # distinct relabelings within the blocks
    n_permutations: int
    exact: bool
    min_p: float
    p_value: float  # NaN when no language has a relative
    feasible: bool
    note: str = ""

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def restricted_dominance_test(
    matrix: np.ndarray,
    blocks: Sequence[Hashable | None],
    within: str = "block",
    n_perm: int = 9999,
    seed: int = 0,
    n_boot: int = 1000,
    level: float = 0.95,
) -> RestrictedDominance:
    """D(M) and its one-sided p with the column labels relabeled only within ``blocks``
    (one label per language; None: a block of its own). Exact when the blocks allow at most
    ``min(EXACT_LIMIT, n_perm + 1)`` relabelings, else the identity and ``n_perm`` draws."""
    m = _square(matrix)
    if len(blocks) != m.shape[0]:
        raise ValueError(f"{len(blocks)} block labels for {m.shape[0]} languages")
    observed = diagonal_dominance(m)
    same = _relatives(blocks)
    has = same.any(1)
    # per language with a relative: own minus the mean over its relatives
    gap = np.diag(m)[has] - (m * same).sum(1)[has] / np.maximum(same.sum(1)[has], 1)
    nan = float("nan")
    lo = hi = nan
    if gap.size:
        draws = lr.bootstrap_draws(gap.size, n_boot, seed)
        lo, hi = _percentile(gap[draws].mean(1), level)
    plan = lr.BlockPermutations(_blocks(blocks), n_perm, seed, EXACT_LIMIT)
    common = {
        "within": within,
        "statistic": observed,
        "relatives": float(gap.mean()) if gap.size else nan,
        "relatives_lo": lo,
        "relatives_hi": hi,
        "share_above_relatives": float(np.mean(gap > 0)) if gap.size else nan,
        "n_with_relatives": int(has.sum()),
        "n_blocks": len(plan.blocks),
        "largest_blocks": plan.sizes[:5],
        "n_relabelings": float(plan.n_distinct),
        "n_permutations": plan.n_permutations,
        "exact": plan.exact,
        "min_p": plan.min_p,
    }
    if plan.n_distinct <= 1:
        note = f"no two languages share a {within}: nothing to relabel, not tested"
        return RestrictedDominance(**common, p_value=float("nan"), feasible=False, note=note)
    null = _column_null(m, plan.perms)  # row 0: the identity
    p = float(np.mean(null >= observed - _TOL * max(1.0, abs(observed))))
    return RestrictedDominance(**common, p_value=p, feasible=True)


def _weighted_pair_mean(m: np.ndarray, mask: np.ndarray, w: np.ndarray) -> np.ndarray:
    """[B]: mean of M[a, b] over the pairs of ``mask`` [n, n], pair (a, b) weighted w_a w_b
    (``w`` [B, n]); NaN where no pair has weight."""
    mask = mask.astype(np.float64)
    num = ((w @ (m * mask)) * w).sum(1)
    den = ((w @ mask) * w).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def weighted_dominance(matrix: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[B] D(M) of the languages weighted by ``weights`` [B, n] (module docstring; all ones:
    D(M))."""
    m = _square(matrix)
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    off = ~np.eye(m.shape[0], dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        diag = (w @ np.diag(m)) / w.sum(1)
    return diag - _weighted_pair_mean(m, off, w)


def _percentile(values: np.ndarray, level: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    lo, hi = percentile_interval(finite, level)
    return float(lo), float(hi)


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval over languages."""

    statistic: float
    lo: float
    hi: float
    level: float
    n_bootstrap: int
    n_valid: int  # resamples where the statistic was defined

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)


def dominance_interval(
    matrix: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> Interval:
    """D(M) and its percentile bootstrap interval over languages (module docstring)."""
    m = _square(matrix)
    n = m.shape[0]
    w = lr.bootstrap_weights(lr.bootstrap_draws(n, n_boot, seed), n)
    boot = weighted_dominance(m, w)
    lo, hi = _percentile(boot, level)
    return Interval(diagonal_dominance(m), lo, hi, level, n_boot, int(np.isfinite(boot).sum()))


def family_out(
    matrix: np.ndarray, families: Sequence[Hashable | None], min_size: int = 2
) -> dict[str, float]:
    """D(M) without each family of at least ``min_size`` languages in turn ({family: D})."""
    m = _square(matrix)
    names, w = lr.group_out_weights(list(families), min_size=min_size, min_left=2)
    if not names:
        return {}
    return dict(zip(names, weighted_dominance(m, w).tolist(), strict=True))


@dataclass(frozen=True)
class Spillover:
    """Mean M over same-block pairs minus over different-block pairs, with its tests."""

    within: str
    statistic: float
    same_mean: float
    other_mean: float
    n_same_pairs: int
    n_other_pairs: int
    p_value: float
    adjusted_statistic: float  # on the residual of additive row and column effects
    adjusted_p_value: float
    lo: float  # bootstrap interval over languages of ``statistic``
    hi: float
    level: float
    n_bootstrap: int
    n_permutations: int
    exact: bool
    feasible: bool
    note: str = ""

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def additive_residual(matrix: np.ndarray) -> np.ndarray:
    """[n, n] M minus the least-squares fit mu + r_a + c_b on the off-diagonal cells (the
    diagonal is left 0)."""
    m = _square(matrix)
    n = m.shape[0]
    rows, cols = np.nonzero(~np.eye(n, dtype=bool))
    design = np.zeros((len(rows), 2 * n + 1))
    design[:, 0] = 1.0
    design[np.arange(len(rows)), 1 + rows] = 1.0
    design[np.arange(len(rows)), 1 + n + cols] = 1.0
    coef = np.linalg.lstsq(design, m[rows, cols], rcond=None)[0]
    out = np.zeros_like(m)
    out[rows, cols] = m[rows, cols] - design @ coef
    return out


def _same_sums(
    m_off: np.ndarray, codes: np.ndarray, perms: np.ndarray, pairs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """[N] sums of ``m_off`` and [N] counts over the ``pairs`` [n, n] whose relabeled codes
    agree."""
    sums, counts = np.empty(len(perms)), np.empty(len(perms))
    for start in range(0, len(perms), _CHUNK):
        lab = codes[perms[start : start + _CHUNK]]  # [c, n]
        same = (lab[:, :, None] == lab[:, None, :]) & pairs  # [c, n, n]
        sums[start : start + len(lab)] = (same * m_off).sum((1, 2))
        counts[start : start + len(lab)] = same.sum((1, 2))
    return sums, counts


def spillover_test(
    matrix: np.ndarray,
    blocks: Sequence[Hashable | None],
    within: str = "block",
    n_perm: int = 9999,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    apart: Sequence[Hashable | None] | None = None,
    apart_name: str | None = None,
) -> Spillover:
    """Spillover to relatives (module docstring), its permutation p over relabeled languages
    (one-sided: more harm on relatives), the same on the additive residual, and a bootstrap
    interval over languages. ``apart`` (e.g. each language's script): count only the pairs
    whose ``apart`` labels differ, so that what relatives share through it (their script) is
    left out; the relabelings then move ``blocks`` over the languages and keep ``apart``."""
    m = _square(matrix)
    n = m.shape[0]
    if len(blocks) != n or (apart is not None and len(apart) != n):
        raise ValueError(f"need one block label per language ({n})")
    pairs = ~np.eye(n, dtype=bool)
    if apart is not None:
        pairs &= ~_relatives(apart)
        within = f"{within} across {apart_name or 'label'}s"
    same = _relatives(blocks) & pairs
    other = ~same & pairs
    n_same, n_other = int(same.sum()), int(other.sum())
    codes = np.unique(np.array([str(k) for k in _block_keys(blocks)]), return_inverse=True)[1]
    plan = lr.BlockPermutations([0] * n, n_perm, seed, EXACT_LIMIT)  # one block: any relabeling
    nan = float("nan")
    if n_same == 0 or n_other == 0:
        note = f"no pair is {'in the same' if n_same == 0 else 'in different'} {within}"
        return Spillover(
            within, nan, nan, nan, n_same, n_other, nan, nan, nan, nan, nan, level, n_boot,
            plan.n_permutations, plan.exact, False, note,
        )  # fmt: skip

    def test(values: np.ndarray) -> tuple[float, float]:
        m_off = np.where(pairs, values, 0.0)
        total, n_pairs = m_off.sum(), int(pairs.sum())
        sums, counts = _same_sums(m_off, codes, plan.perms, pairs)
        with np.errstate(invalid="ignore", divide="ignore"):
            null = sums / counts - (total - sums) / (n_pairs - counts)
        observed = float(null[0])
        p = float(np.mean(null >= observed - _TOL * max(1.0, abs(observed))))  # NaN: no hit
        return observed, p

    statistic, p = test(m)
    adjusted, adjusted_p = test(additive_residual(m))
    w = lr.bootstrap_weights(lr.bootstrap_draws(n, n_boot, seed), n)
    boot = _weighted_pair_mean(m, same, w) - _weighted_pair_mean(m, other, w)
    lo, hi = _percentile(boot, level)
    return Spillover(
        within=within,
        statistic=statistic,
        same_mean=float(m[same].mean()),
        other_mean=float(m[other].mean()),
        n_same_pairs=n_same,
        n_other_pairs=n_other,
        p_value=p,
        adjusted_statistic=adjusted,
        adjusted_p_value=adjusted_p,
        lo=lo,
        hi=hi,
        level=level,
        n_bootstrap=n_boot,
        n_permutations=plan.n_permutations,
        exact=plan.exact,
        feasible=True,
    )


def beats_every_random(own: np.ndarray, random: np.ndarray) -> tuple[int, int, float]:
    """(languages whose ``own`` [n] value exceeds every one of ``random`` [S, n], n, one-sided
    binomial p at P = 1 / (S + 1) per language)."""
    own = np.asarray(own, dtype=np.float64)
    random = np.atleast_2d(np.asarray(random, dtype=np.float64))
    n, chance = own.size, 1 / (random.shape[0] + 1)
    beats = int(np.sum(own > random.max(0)))
    return beats, n, float(binom.sf(beats - 1, n, chance))
