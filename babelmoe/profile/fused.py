"""One layer's statistics from its FFN activation, written so that one compiled graph serves every
layer of a model and every batch shape.

``layer_statistics(h, split, norm, use_zscore, interleaved)`` returns, for h [T, width] in the
expert-contiguous layout (or, ``interleaved``, the layout of ``Partition.expert_order(layer,
interleaved=True)``: the faster one on a GPU; contiguous slices are faster on a CPU): ``fixed``
[T, E] (the raw scores in fixed point, for the score sums: integers held in float64) and
``values`` [T, E] float32 (the z-scores, or the raw scores without the z-score).
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


def interleaved_scores(h: torch.Tensor, split: Split, norm: str) -> torch.Tensor:
    """[T, width] -> [T, E] scores in the interleaved layout (``Partition.expert_order(layer,
    interleaved=True)``): the first ``small * E`` columns are a [small, E] grid (neuron j of
    expert e at j * E + e), the last ``n_big`` columns the extra neuron of the larger experts.
    The same scores as ``babelmoe.experts.moe_view.expert_scores`` over the contiguous layout
    (up to the order of float sums); the reduction runs down the grid's columns, which a GPU
    reads coalesced (a reduction over each expert's short slice ran at ~15% of its bandwidth)."""
    n_big, big, small = split
    width = h.shape[-1]
    n_experts = n_big if big == small else n_big + (width - n_big * big) // small
    wide = torch.promote_types(h.dtype, torch.float32)
    grid = h[..., : small * n_experts].unflatten(-1, (small, n_experts)).to(wide)
    grid = grid.square() if norm == "l2" else grid.abs()
    reduced = grid.amax(-2) if norm == "max" else grid.sum(-2)
    if big != small:  # the larger experts' extra neuron, zero for the others
        extra = h[..., small * n_experts :].to(wide)
        extra = extra.square() if norm == "l2" else extra.abs()
        extra = torch.nn.functional.pad(extra, (0, n_experts - n_big))
        reduced = torch.maximum(reduced, extra) if norm == "max" else reduced + extra
    if norm in ("max", "l1"):
        return reduced
    if norm == "l2":
        return reduced.sqrt()
    if norm == "mean":
        larger = torch.arange(n_experts, device=h.device) < n_big
        return reduced / torch.where(larger, float(big), float(small)).to(wide)
    raise ValueError(f"unknown norm {norm!r}")


def layer_statistics(
    h: torch.Tensor, split: Split, norm: str, use_zscore: bool, interleaved: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """(raw scores in fixed point [T, E] float64, selection values [T, E] float32) of one layer.

    The fixed-point scores are integers held in float64, so that a matrix product sums them per
    group exactly (``ScoreRecorder``)."""
    scores = (interleaved_scores if interleaved else split_scores)(h, split, norm)
    values = zscore(scores) if use_zscore else scores
    return to_fixed_point(scores, torch.float64), values.float()


@functools.cache
def compiled_statistics(backend: str = "inductor"):
    """``layer_statistics`` compiled once, with dynamic token counts (used when the decoder
    layers themselves run eagerly; inside compiled layers dynamo traces through it)."""
    return torch.compile(layer_statistics, dynamic=True, fullgraph=True, backend=backend)
