"""The MoE view of a dense model: every FFN as E experts that can be switched on and off.

``expert_layout`` reorders each FFN's neurons so that expert ``e`` is the contiguous slice
``offsets[e]:offsets[e+1]`` of the intermediate activation (the larger experts first, as the
partition labels them). A reordered FFN computes exactly the same function, so the model's
outputs do not change; per-expert work then becomes a reshape instead of a scatter.

``moe_view`` additionally wraps each output projection in an ``ExpertMixer`` that multiplies
the activation by a per-expert mask: all experts active (the default) reproduces the dense
model; a fixed mask [E] or a per-token top-k router turns the FFN into a sparse MoE.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from babelmoe.experts.partition import Partition, check_canonical, check_partition_fits
from babelmoe.models.ffn import FFN, ffns


def expert_offsets(sizes: torch.Tensor) -> torch.Tensor:
    """[E+1] start offsets of the experts' slices given their sizes [E]."""
    return torch.cat([sizes.new_zeros(1), torch.cumsum(sizes, 0)])


def expert_scores(h: torch.Tensor, sizes: torch.Tensor, norm: str = "l2") -> torch.Tensor:
    """[..., E] score of each expert's contiguous slice of ``h`` [..., width].

    Sizes may differ by one: the larger experts come first (the partition's canonical labels,
    which ``expert_layout`` checks), so the activation splits into two reshapes. ``norm``: l2,
    l1, mean (mean |h|), max (max |h|).
    """
    big, small = int(sizes.max()), int(sizes.min())
    n_big = int((sizes == big).sum()) if big != small else int(sizes.numel())
    parts = [(h[..., : n_big * big], n_big, big)]
    if n_big < sizes.numel():
        parts.append((h[..., n_big * big :], int(sizes.numel()) - n_big, small))
    scores = [block_scores(chunk.unflatten(-1, (n, size)), norm) for chunk, n, size in parts]
    return torch.cat(scores, dim=-1) if len(scores) > 1 else scores[0]


def block_scores(blocks: torch.Tensor, norm: str = "l2") -> torch.Tensor:
    """[..., n, size] equal-size expert slices -> [..., n] scores, in at least float32.

    ``norm``: l2, l1, mean (mean |h|), max (max |h|). No data-dependent shapes, so
    ``torch.compile`` can fuse it (``babelmoe.profile.fused``).
    """
    wide = torch.promote_types(blocks.dtype, torch.float32)
    if norm == "l2":
        return torch.linalg.vector_norm(blocks, ord=2, dim=-1, dtype=wide)
    if norm == "l1":
        return blocks.to(wide).abs().sum(-1)
    if norm == "mean":
        return blocks.to(wide).abs().mean(-1)
    if norm == "max":
        return blocks.to(wide).abs().amax(-1)
    raise ValueError(f"unknown norm {norm!r}")


@contextlib.contextmanager
def expert_layout(model: nn.Module, partition: Partition) -> Iterator[list[torch.Tensor]]:
    """Reorder every FFN so experts are contiguous; restore the original order on exit.

    Yields the per-layer expert sizes [E] (int64), in the slice order. The caller checks that
    the partition fits the model (``check_partition_fits``), once.
    """
    check_canonical(partition)
    layers = ffns(model)
    orders = [partition.expert_order(f.layer) for f in layers]
    for ffn, order in zip(layers, orders, strict=True):
        ffn.select_neurons(order)
    try:
        yield [row for row in partition.sizes()]
    finally:
        for ffn, order in zip(layers, orders, strict=True):
            ffn.select_neurons(torch.argsort(order))


class ExpertMixer(nn.Module):
    """Wraps an FFN's output projection and gates its input expert by expert.

    ``mask`` None: every expert active (identical to the dense FFN). A bool/float tensor [E]:
    a fixed set of experts. ``top_k`` set: per token, only the ``top_k`` experts with the largest
    L2 score stay active (the MoEfication-style router on the activation itself).
    """

    def __init__(self, down: nn.Module, sizes: torch.Tensor) -> None:
        super().__init__()
        self.down = down
        self.register_buffer("sizes", sizes.clone(), persistent=False)
        self.mask: torch.Tensor | None = None
        self.top_k: int | None = None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.top_k is not None:
            scores = expert_scores(h, self.sizes)
            chosen = scores.topk(self.top_k, dim=-1).indices
            gate = torch.zeros_like(scores).scatter_(-1, chosen, 1.0)
            h = h * torch.repeat_interleave(gate.to(h.dtype), self.sizes.to(h.device), dim=-1)
        if self.mask is not None:
            weights = torch.repeat_interleave(
                self.mask.to(h.device, h.dtype), self.sizes.to(h.device)
            )
            h = h * weights
        return self.down(h)


@contextlib.contextmanager
def moe_view(model: nn.Module, partition: Partition) -> Iterator[list[ExpertMixer]]:
    """Temporarily turn every FFN into E experts behind an ``ExpertMixer`` (one per layer)."""
    check_partition_fits(partition, model)
    with expert_layout(model, partition) as sizes:
        layers: list[FFN] = ffns(model)
        mixers = []
        for ffn, layer_sizes in zip(layers, sizes, strict=True):
            mixer = ExpertMixer(ffn.down, layer_sizes)
            setattr(ffn.module, ffn.arch.down, mixer)
            mixers.append(mixer)
        try:
            yield mixers
        finally:
            for ffn, mixer in zip(layers, mixers, strict=True):
                setattr(ffn.module, ffn.arch.down, mixer.down)
