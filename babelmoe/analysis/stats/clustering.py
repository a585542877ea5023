"""Hierarchical clustering of languages from a symmetric distance matrix (scipy)."""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import cophenet, leaves_list, linkage, optimal_leaf_ordering
from scipy.spatial.distance import squareform


def cluster(dist: np.ndarray, method: str = "average") -> tuple[np.ndarray, list[int]]:
    """[n, n] distance -> (scipy linkage matrix [n-1, 4], leaf order with optimal ordering).

    NaN distances (a language with no data) are replaced by the largest finite distance.
    """
    n = dist.shape[0]
    if n < 2:
        return np.zeros((0, 4)), list(range(n))
    d = np.array(dist, dtype=np.float64)
    finite = d[np.isfinite(d)]
    d[~np.isfinite(d)] = finite.max() if finite.size else 1.0
    d = (d + d.T) / 2.0
    np.fill_diagonal(d, 0.0)
    condensed = squareform(np.maximum(d, 0.0), checks=False)
    tree = linkage(condensed, method=method)
    if n > 2:
        tree = optimal_leaf_ordering(tree, condensed)
    return tree, [int(i) for i in leaves_list(tree)]


def cophenetic_correlation(tree: np.ndarray, dist: np.ndarray) -> float:
    """Pearson correlation between the tree's cophenetic distances and ``dist``."""
    if tree.shape[0] < 2:
        return float("nan")
    corr, _ = cophenet(tree, squareform(np.nan_to_num((dist + dist.T) / 2.0), checks=False))
    return float(corr)


def align_tree(tree: np.ndarray, reference_order: list[int]) -> np.ndarray:
    """The same tree with each merge's two children swapped so that the child whose leaves sit
    earlier in ``reference_order`` (on average) comes first: draws a second dendrogram as close
    as its shape allows to the first one's leaf order."""
    n = tree.shape[0] + 1
    rank = {leaf: k for k, leaf in enumerate(reference_order)}
    leaves: dict[int, list[int]] = {i: [i] for i in range(n)}
    out = tree.copy()
    for row in range(tree.shape[0]):
        a, b = int(tree[row, 0]), int(tree[row, 1])
        mean_a = np.mean([rank[x] for x in leaves[a]])
        mean_b = np.mean([rank[x] for x in leaves[b]])
        if mean_b < mean_a:
            out[row, 0], out[row, 1] = b, a
        leaves[n + row] = leaves[a] + leaves[b]
    return out
