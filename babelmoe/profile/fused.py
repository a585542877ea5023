"""One layer's statistics from its FFN activation, written so that one compiled graph serves every
layer of a model and every batch shape.

``layer_statistics(h, split, norm, use_zscore)`` returns, for h [T, width] in the
expert layout: ``fixed`` [T, E] (the raw scores in fixed point, for the score sums:
integers held in float64) and ``values`` [T, E] float32 (the z-scores, or the raw scores without
the z-score).
``split = (n_big, big, small)`` describes the expert sizes as plain integers (the first
``n_big`` experts hold ``big`` neurons, the rest ``small``; where their slices lie is
``babelmoe.experts.moe_view``'s layout), computed once on the host by ``expert_split``: the
function has no data-dependent shapes and no per-layer constants, so ``torch.compile`` traces it
once (inside the compiled decoder layers, or alone through ``compiled_statistics``). Same
definitions as ``babelmoe.experts.moe_view.split_scores`` and ``babelmoe.profile.scoring.zscore``.
"""

from __future__ import annotations

import functools

import torch

from babelmoe.experts.moe_view import Split, split_scores
from babelmoe.profile.scoring import to_fixed_point, zscore


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
