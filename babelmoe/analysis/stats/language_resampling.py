"""Resampling languages, not text: the uncertainty a claim about languages has.

Every scheme here is a weight per language, ``w`` [B, n], turned into a weight per pair of the
original matrix, ``w_a * w_b`` (:func:`pair_weights`), which the weighted MRM of
:mod:`babelmoe.analysis.stats.mrm` consumes:

- :func:`bootstrap_weights`: draw n languages with replacement; ``w_a`` = how often language a
  was drawn. A pair of two copies of one language is no pair of the original matrix (its zero
  distance carries no information) and gets no weight.
- :func:`jackknife_weights`: leave one language out (weights 1, one 0).
- :func:`group_out_weights`: leave one group (a family) out.

Restricted permutations (:class:`BlockPermutations`) relabel languages only within blocks
(within families to test script, within scripts to test genealogy), so that the structure the
blocks carry is kept in every relabeling; that is the usual answer to Galton's problem (related
languages are not exchangeable) in permutation tests on distance matrices.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Sequence

import numpy as np


def pair_weights(language_weights: np.ndarray) -> np.ndarray:
    """[B, n] language weights -> [B, P] pair weights ``w_a * w_b`` over the upper triangle."""
    w = np.atleast_2d(np.asarray(language_weights, dtype=np.float64))
    rows, cols = np.triu_indices(w.shape[1], 1)
    return w[:, rows] * w[:, cols]


def bootstrap_draws(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """[B, n] indices of the languages drawn (with replacement) in each resample."""
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def bootstrap_weights(draws: np.ndarray, n: int) -> np.ndarray:
    """[B, n] draws -> [B, n] how often each language was drawn."""
    out = np.zeros((draws.shape[0], n))
    np.add.at(out, (np.arange(draws.shape[0])[:, None], draws), 1.0)
    return out


def jackknife_weights(n: int) -> np.ndarray:
    """[n, n]: row i leaves language i out."""
    return 1.0 - np.eye(n)


def group_out_weights(
    groups: Sequence[Hashable | None], min_size: int = 2, min_left: int = 4
) -> tuple[list[str], np.ndarray]:
    """Leave-one-group-out weights for the groups with at least ``min_size`` languages whose
    removal leaves at least ``min_left``; languages without a group (None) are never left out.
    Returns the group names (sorted) and [G, n] weights."""
    labels = [None if g is None or g == "" else str(g) for g in groups]
    names = sorted({g for g in labels if g is not None and labels.count(g) >= min_size})
    names = [g for g in names if len(labels) - labels.count(g) >= min_left]
    weights = np.array([[0.0 if x == g else 1.0 for x in labels] for g in names])
    return names, weights.reshape(len(names), len(labels))


def resample_matrix(matrix: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """[n, n] matrix -> [m, m] matrix of the drawn languages (rows and columns follow
    ``draws`` [m]); a direct construction, for checks."""
    return np.asarray(matrix)[np.ix_(draws, draws)]


def pair_index(perms: np.ndarray) -> np.ndarray:
    """[N, n] language relabelings -> [N, P] index of the original pair that lands on each pair
    of the upper triangle."""
    n = perms.shape[1]
    rows, cols = np.triu_indices(n, 1)
    ids = np.zeros((n, n), dtype=np.int64)
    ids[rows, cols] = np.arange(len(rows))
    ids = ids + ids.T
    dtype = np.int16 if len(rows) < 2**15 else np.int32
    return ids[perms[:, rows], perms[:, cols]].astype(dtype)


class BlockPermutations:
    """Relabelings of n languages that only move languages within their block.

    A block of one language keeps it in place; languages whose block is None are blocks of
    their own. ``n_distinct`` = the product of the block sizes' factorials (the size of the
    group of such relabelings). When it is at most ``exact_limit`` and at most
    ``n_random + 1`` (listing them costs no more than drawing), every relabeling is listed
    (``exact``); otherwise the identity and ``n_random`` uniform draws from the group.

    ``min_p`` is the smallest p-value the design can give (1 / n_distinct when exact, else
    1 / (n_random + 1)); :meth:`feasible` says whether it can reach a level ``alpha`` at all.
    """

    def __init__(
        self, blocks: Sequence[Hashable | None], n_random: int, seed: int, exact_limit: int
    ) -> None:
        keys = [("<own>", i) if b is None or b == "" else b for i, b in enumerate(blocks)]
        self.n = len(keys)
        index: dict[Hashable, list[int]] = {}
        for i, key in enumerate(keys):
            index.setdefault(key, []).append(i)
        self.blocks = [np.array(members) for members in index.values()]
        self.n_distinct = math.prod(math.factorial(len(b)) for b in self.blocks)
        self.exact = self.n_distinct <= min(exact_limit, n_random + 1)
        identity = np.arange(self.n)
        if self.exact:
            moving = [b for b in self.blocks if len(b) > 1]
            rows = []
            for choice in itertools.product(*(itertools.permutations(b) for b in moving)):
                perm = identity.copy()
                for block, image in zip(moving, choice, strict=True):
                    perm[block] = image
                rows.append(perm)
            perms = np.stack(rows) if rows else identity[None]
        else:
            rng = np.random.default_rng(seed)
            perms = np.tile(identity, (n_random + 1, 1))
            for block in self.blocks:
                if len(block) > 1:
                    perms[1:, block] = block[
                        rng.permuted(np.tile(np.arange(len(block)), (n_random, 1)), axis=1)
                    ]
        self.perms = perms  # [N, n], identity first
        self.pair_index = pair_index(perms)

    @property
    def n_permutations(self) -> int:
        return int(self.perms.shape[0])

    @property
    def min_p(self) -> float:
        return 1.0 / (self.n_distinct if self.exact else self.n_permutations)

    def feasible(self, alpha: float) -> bool:
        """Whether a p-value below ``alpha`` is possible with these blocks."""
        return self.n_distinct > 1 and 1.0 / self.n_distinct <= alpha and self.min_p <= alpha

    @property
    def sizes(self) -> list[int]:
        return sorted((len(b) for b in self.blocks), reverse=True)
