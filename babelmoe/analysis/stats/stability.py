"""Agreement between the partitions of several k-means seeds, and the spread of results.

Adjusted Rand index (Hubert & Arabie 1985): with the contingency table n_ij of two labelings of
N items, row sums a_i and column sums b_j,
    ARI = (sum_ij C(n_ij, 2) - E) / ((sum_i C(a_i, 2) + sum_j C(b_j, 2)) / 2 - E),
    E = sum_i C(a_i, 2) * sum_j C(b_j, 2) / C(N, 2).
1 for identical partitions (up to renaming the experts), about 0 for independent ones. Expert ids
are arbitrary per seed, so the per-expert numbers of two seeds are not comparable; the language
x language matrices and the per-layer counts are, and their spread over seeds is reported.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np


def _pairs(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float((x * (x - 1) / 2).sum())


def adjusted_rand_index(a: np.ndarray, b: np.ndarray) -> float:
    """ARI between two labelings of the same items (1-D integer arrays)."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if a.shape != b.shape:
        raise ValueError(f"labelings differ in length: {a.size} vs {b.size}")
    _, a_idx = np.unique(a, return_inverse=True)
    _, b_idx = np.unique(b, return_inverse=True)
    table = np.zeros((a_idx.max() + 1, b_idx.max() + 1), dtype=np.int64)
    np.add.at(table, (a_idx, b_idx), 1)
    index = _pairs(table)
    rows, cols = _pairs(table.sum(axis=1)), _pairs(table.sum(axis=0))
    total = a.size * (a.size - 1) / 2
    expected = rows * cols / total if total else 0.0
    maximum = (rows + cols) / 2
    if maximum == expected:  # both labelings trivial (all one cluster or all singletons)
        return 1.0
    return float((index - expected) / (maximum - expected))


def partition_agreement(
    labels: Sequence[np.ndarray],
) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Per-layer ARI for every pair of seeds: labels [L, width] each -> (pairs, [n_pairs, L])."""
    pairs = list(itertools.combinations(range(len(labels)), 2))
    n_layers = labels[0].shape[0]
    out = np.zeros((len(pairs), n_layers))
    for row, (i, j) in enumerate(pairs):
        for layer in range(n_layers):
            out[row, layer] = adjusted_rand_index(labels[i][layer], labels[j][layer])
    return pairs, out


def spread(values: np.ndarray) -> dict[str, np.ndarray]:
    """[S, ...] values over seeds -> mean, std (population), min, max over seeds."""
    values = np.asarray(values, dtype=np.float64)
    return {
        "mean": values.mean(axis=0),
        "std": values.std(axis=0),
        "min": values.min(axis=0),
        "max": values.max(axis=0),
    }
