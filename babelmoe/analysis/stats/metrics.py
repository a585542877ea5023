"""Pairwise similarity and distance between languages' frequency vectors.

Every function takes ``x`` of shape [..., n, d] (n languages, d = L*E for the whole model or E for
one layer, any leading batch axes) and returns [..., n, n] with entry [i, j] comparing row i to j.

- ``euclidean``: sqrt(sum_k (x_ik - x_jk)^2) on raw frequencies.
- ``kl``: Kullback-Leibler divergence KL(p_i || p_j) in bits, where p = x / sum(x) and then
  p <- (p + eps) / (1 + d * eps) (every entry smoothed by ``eps``, default 1e-6, so the divergence
  stays finite when an expert is never selected in one language). Not symmetric: [i, j] and
  [j, i] are the two directions.
- ``jensen_shannon``: JS divergence in bits (in [0, 1]) of p_i and p_j (no smoothing needed).
- ``pearson``, ``spearman`` (Pearson of average ranks), ``cosine``: similarities in [-1, 1].

A row that is all zeros (or constant, for the correlations) gives NaN instead of a number.
``as_distance`` turns any of them into a symmetric distance: similarities become 1 - s, KL
becomes (KL(p||q) + KL(q||p)) / 2.

numpy is imported inside the functions: ``METRICS``'s names are every ``analyse``/``diff``
``--help``'s choices, which must not wait for numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

_LOG2 = math.log(2.0)


def _normalise(x: np.ndarray) -> np.ndarray:
    """Rows as distributions; all-zero rows become NaN."""
    import numpy as np

    total = x.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, x / np.where(total > 0, total, 1.0), np.nan)


def _gram_of_unit_rows(x: np.ndarray) -> np.ndarray:
    """Cosine of rows; rows of zero norm give NaN."""
    import numpy as np

    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = np.where(norm > 0, x / np.where(norm > 0, norm, 1.0), np.nan)
    out = np.clip(unit @ np.swapaxes(unit, -1, -2), -1.0, 1.0)
    n = x.shape[-2]
    diag = np.where(np.isnan(out[..., np.arange(n), np.arange(n)]), np.nan, 1.0)
    out[..., np.arange(n), np.arange(n)] = diag
    return out


def euclidean(x: np.ndarray, eps: float = 0.0) -> np.ndarray:
    import numpy as np

    n = x.shape[-2]
    out = np.empty((*x.shape[:-2], n, n))
    for i in range(n):  # [..., n, d] differences against row i, exact for identical rows
        out[..., i, :] = np.sqrt(((x[..., i : i + 1, :] - x) ** 2).sum(axis=-1))
    return out


def kl(x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    import numpy as np

    d = x.shape[-1]
    p = (_normalise(x) + eps) / (1.0 + d * eps)
    logp = np.log(p)
    self_term = (p * logp).sum(axis=-1)  # [..., n]
    cross = p @ np.swapaxes(logp, -1, -2)  # [..., n, n]: sum_k p_ik log p_jk
    out = np.maximum((self_term[..., :, None] - cross) / _LOG2, 0.0)
    n = x.shape[-2]
    out[..., np.arange(n), np.arange(n)] = np.where(np.isnan(self_term), np.nan, 0.0)
    return out


def _plogp(p: np.ndarray) -> np.ndarray:
    """Elementwise p * log(p) with 0 log 0 = 0 (NaN stays NaN)."""
    import numpy as np

    return p * np.log(np.where(p > 0, p, 1.0))


def jensen_shannon(x: np.ndarray, eps: float = 0.0) -> np.ndarray:
    # JS(p, q) = H(m) - (H(p) + H(q)) / 2 with m = (p + q) / 2, H(p) = -sum p log p.
    import numpy as np

    p = _normalise(x)
    self_terms = _plogp(p).sum(axis=-1)  # [..., n] = -H(p_i)
    n = x.shape[-2]
    out = np.zeros((*x.shape[:-2], n, n))
    for i in range(n - 1):
        m = (p[..., i : i + 1, :] + p[..., i + 1 :, :]) / 2.0  # [..., n-i-1, d]
        div = 0.5 * (self_terms[..., i : i + 1] + self_terms[..., i + 1 :]) - _plogp(m).sum(-1)
        out[..., i, i + 1 :] = div
        out[..., i + 1 :, i] = div
    out[..., np.arange(n), np.arange(n)] = np.where(np.isnan(self_terms), np.nan, 0.0)
    return np.clip(out / _LOG2, 0.0, 1.0)


def pearson(x: np.ndarray, eps: float = 0.0) -> np.ndarray:
    return _gram_of_unit_rows(x - x.mean(axis=-1, keepdims=True))


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..d along the last axis, ties sharing their average rank; a row holding a NaN is
    all NaN. Equals ``scipy.stats.rankdata(x, axis=-1)``, with one sort for all rows."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    shape, d = x.shape, x.shape[-1]
    if x.size == 0:
        return x.copy()
    rows = x.reshape(-1, d)
    order = np.argsort(rows, axis=-1)
    ordered = np.take_along_axis(rows, order, axis=-1).ravel()
    starts = np.empty(ordered.shape, dtype=bool)  # first of a run of equal values in a row
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    starts[::d] = True
    first = np.flatnonzero(starts)  # flat position of each run's first value
    size = np.diff(first, append=ordered.size)
    run_rank = first % d + (size - 1) / 2.0 + 1.0
    ranks = np.empty(rows.shape)
    np.put_along_axis(ranks, order, run_rank[np.cumsum(starts) - 1].reshape(rows.shape), -1)
    ranks[np.isnan(rows).any(axis=-1)] = np.nan
    return ranks.reshape(shape)


def spearman(x: np.ndarray, eps: float = 0.0) -> np.ndarray:
    return pearson(average_ranks(x))


def cosine(x: np.ndarray, eps: float = 0.0) -> np.ndarray:
    return _gram_of_unit_rows(x)


@dataclass(frozen=True)
class Metric:
    """One comparison of frequency vectors."""

    fn: Callable[..., np.ndarray]
    is_distance: bool
    symmetric: bool
    label: str


METRICS: dict[str, Metric] = {
    "euclidean": Metric(euclidean, True, True, "Euclidean distance"),
    "kl": Metric(kl, True, False, "KL divergence (bits)"),
    "jensen_shannon": Metric(jensen_shannon, True, True, "Jensen-Shannon divergence (bits)"),
    "pearson": Metric(pearson, False, True, "Pearson correlation"),
    "spearman": Metric(spearman, False, True, "Spearman correlation"),
    "cosine": Metric(cosine, False, True, "cosine similarity"),
}


def pairwise(x: np.ndarray, metric: str, kl_epsilon: float = 1e-6) -> np.ndarray:
    """[..., n, d] -> [..., n, n] with the named metric."""
    import numpy as np

    return METRICS[metric].fn(np.asarray(x, dtype=np.float64), eps=kl_epsilon)


def as_distance(matrix: np.ndarray, metric: str) -> np.ndarray:
    """A symmetric distance with a zero diagonal from a metric's [..., n, n] output."""
    import numpy as np

    spec = METRICS[metric]
    out = matrix if spec.is_distance else 1.0 - matrix
    if not spec.symmetric:
        out = (out + np.swapaxes(out, -1, -2)) / 2.0
    out = out.copy()
    n = out.shape[-1]
    out[..., np.arange(n), np.arange(n)] = 0.0
    return out
