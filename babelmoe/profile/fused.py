"""One layer's statistics from its FFN activation, written so that one compiled graph serves every
layer of a model and every batch shape.

``layer_statistics(h, split, norm, use_zscore)`` returns, for h [T, width] in the
expert-contiguous layout: ``fixed`` [T, E] (the raw scores in fixed point, for the score sums:
integers held in float64) and ``values`` [T, E] float32 (the z-scores, or the raw scores without
the z-score).
``split = (n_big, big, small)`` describes the expert sizes as plain integers (the first
``n_big`` experts hold ``big`` neurons, the rest ``small``), computed once on the host by
``expert_split``: the function has no data-dependent shapes and no per-layer constants, so
``torch.compile`` traces it once (inside the compiled decoder layers, or alone through
``compiled_statistics``). Same definitions as ``babelmoe.experts.moe_view.expert_scores`` and
``babelmoe.profile.scoring.zscore``.
"""

from __future__ import annotations

import functools

import torch

from babelmoe.experts.moe_view import block_scores
from babelmoe.profile.scoring import to_fixed_point, zscore

Split = tuple[int, int, int]


def expert_split(sizes: torch.Tensor) -> Split:
    """(n_big, big, small) of a layer's expert sizes [E]: larger experts first, sizes differ by
    at most one (the partition's canonical labels)."""
    big, small = int(sizes.max()), int(sizes.min())
    n_big = int((sizes == big).sum()) if big != small else int(sizes.numel())
    return n_big, big, small


def split_scores(h: torch.Tensor, split: Split, norm: str) -> torch.Tensor:
    """[T, width] -> [T, E] scores of the experts' contiguous slices (see ``expert_split``)."""
    n_big, big, small = split
    cut = n_big * big
    scores = block_scores(h[..., :cut].unflatten(-1, (n_big, big)), norm)
    if cut < h.shape[-1]:
        rest = block_scores(h[..., cut:].unflatten(-1, (-1, small)), norm)
        scores = torch.cat([scores, rest], dim=-1)
    return scores


def layer_statistics(
    h: torch.Tensor, split: Split, norm: str, use_zscore: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(raw scores in fixed point [T, E] float64, selection values [T, E] float32) of one layer.

    The fixed-point scores are integers held in float64, so that a matrix product sums them per
    group exactly (``ScoreRecorder``)."""
    scores = split_scores(h, split, norm)
    values = zscore(scores) if use_zscore else scores
    return to_fixed_point(scores, torch.float64), values.float()


@functools.cache
def compiled_statistics(backend: str = "inductor"):
    """``layer_statistics`` compiled once, with dynamic token counts (used when the decoder
    layers themselves run eagerly; inside compiled layers dynamo traces through it)."""
    return torch.compile(layer_statistics, dynamic=True, fullgraph=True, backend=backend)
