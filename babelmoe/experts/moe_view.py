"""The MoE view of a dense model: every FFN as E experts that can be switched on and off.

``expert_layout`` reorders each FFN's neurons so that per-expert work is a reshape instead of a
scatter. A reordered FFN computes exactly the same function, so the model's outputs do not
change. The layout (``slice_order``) puts each expert's first ``head`` neurons (``head``: its
smallest expert size rounded down to a multiple of ``HEAD_ALIGN``) side by side in the "head",
expert ``e`` at columns ``e * head : (e + 1) * head``, and the rest of every expert (0-8 neurons,
the larger experts first, as the partition labels them) contiguously in the "tail" after it::

    43-neuron experts (Llama-2-7B, E = 256):  [ e0: 40 | e1: 40 | ... | e255: 40 ][ e0: 3 | ... ]

So every head slice starts on a 16-byte boundary, and a compiled per-expert norm loads it with
wide vector loads: on an H200 the norms of a Llama-2-7B layer's activation cost 90 us on top of
the activation instead of 321 us with plain contiguous 43-neuron slices (``bench_scores.py``,
benchmarks/RESULTS.md).

``moe_view`` additionally wraps each output projection in an ``ExpertMixer`` that multiplies
the activation by a per-expert mask: all experts active (the default) reproduces the dense
model; a fixed mask [E] or a per-token top-k router turns the FFN into a sparse MoE.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from babelmoe.experts.partition import (
    Partition,
    check_canonical,
    check_partition_fits,
    digests_kept,
)
from babelmoe.models.ffn import FFN, ffns

HEAD_ALIGN = 8  # head slices are whole multiples of 8 neurons (16 bytes of bfloat16)

# (n_big, big, small): the first n_big experts hold ``big`` neurons, the rest ``small`` (sizes
# differ by at most one), as plain integers, so compiled code treats them as constants
Split = tuple[int, int, int]


def expert_split(sizes: torch.Tensor) -> Split:
    """(n_big, big, small) of a layer's expert sizes [E]: larger experts first, sizes differ by
    at most one (the partition's canonical labels)."""
    big, small = int(sizes.max()), int(sizes.min())
    n_big = int((sizes == big).sum()) if big != small else int(sizes.numel())
    return n_big, big, small


def head_size(split: Split) -> int:
    """Neurons of every expert in the layout's aligned head (the rest are in the tail)."""
    return HEAD_ALIGN * (split[2] // HEAD_ALIGN)


def slice_order(sizes: torch.Tensor) -> torch.Tensor:
    """[width] for each column of the layout, the column of the expert-contiguous order
    (``Partition.expert_order``) it takes: each expert's first ``head_size`` neurons, expert by
    expert, then the rest of every expert, expert by expert."""
    head = head_size(expert_split(sizes))
    expert = _contiguous_experts(sizes)
    position = torch.arange(int(sizes.sum())) - expert_offsets(sizes)[expert]
    return torch.argsort((position >= head).to(torch.int8), stable=True)


def layout_order(partition: Partition, layer: int) -> torch.Tensor:
    """[width] neuron indices of ``layer`` in the order ``expert_layout`` gives them."""
    sizes = torch.bincount(partition.labels[layer], minlength=partition.n_experts)
    return partition.expert_order(layer)[slice_order(sizes)]


def column_experts(sizes: torch.Tensor) -> torch.Tensor:
    """[width] the expert of every column of the layout."""
    return _contiguous_experts(sizes)[slice_order(sizes)]


def _contiguous_experts(sizes: torch.Tensor) -> torch.Tensor:
    """[width] the expert of every column of the expert-contiguous order."""
    return torch.repeat_interleave(torch.arange(sizes.numel()), sizes)


def expert_offsets(sizes: torch.Tensor) -> torch.Tensor:
    """[E+1] start offsets of the experts' slices in the expert-contiguous order."""
    return torch.cat([sizes.new_zeros(1), torch.cumsum(sizes, 0)])


def split_scores(h: torch.Tensor, split: Split, norm: str = "l2") -> torch.Tensor:
    """[..., width] activation in the layout -> [..., E] expert scores, in at least float32.

    ``norm``: l2, l1, mean (mean |h|), max (max |h|). No data-dependent shapes and only the
    split's integers, so ``torch.compile`` fuses it (``babelmoe.profile.fused``).
    """
    n_big, big, small = split
    n_experts = n_big + (h.shape[-1] - n_big * big) // small if small else n_big
    head = head_size(split)
    parts = []  # (slices [..., n, size], first expert) of the head and of the tail
    if head:
        parts.append((h[..., : n_experts * head].unflatten(-1, (n_experts, head)), 0))
    tail = h[..., n_experts * head :]
    if big > head:
        parts.append((tail[..., : n_big * (big - head)].unflatten(-1, (n_big, big - head)), 0))
    if small > head and n_big < n_experts:
        rest = tail[..., n_big * (big - head) :]
        parts.append((rest.unflatten(-1, (n_experts - n_big, small - head)), n_big))
    if len(parts) == 1 and parts[0][0].shape[-2] == n_experts:
        # one whole slice per expert (a head alone, or experts under 8 neurons of one size):
        # the plain contiguous norm, as before the head existed
        return block_scores(parts[0][0], norm)
    total = None
    for blocks, first in parts:
        partial = _partial(blocks, norm)
        if partial.shape[-1] < n_experts:  # the tail of some experts only
            partial = torch.nn.functional.pad(
                partial, (first, n_experts - first - partial.shape[-1])
            )
        total = partial if total is None else _combine(total, partial, norm)
    if norm == "l2":
        return total.sqrt()
    if norm == "mean":
        sizes = torch.full((n_experts,), small, dtype=total.dtype, device=total.device)
        sizes[:n_big] = big
        return total / sizes
    return total


def _partial(blocks: torch.Tensor, norm: str) -> torch.Tensor:
    """[..., n, size] -> [..., n] what a norm accumulates over part of each slice."""
    x = blocks.to(torch.promote_types(blocks.dtype, torch.float32))
    if norm == "l2":
        return x.square().sum(-1)
    if norm in ("l1", "mean"):
        return x.abs().sum(-1)
    if norm == "max":
        return x.abs().amax(-1)
    raise ValueError(f"unknown norm {norm!r}")


def _combine(a: torch.Tensor, b: torch.Tensor, norm: str) -> torch.Tensor:
    return torch.maximum(a, b) if norm == "max" else a + b


def expert_scores(h: torch.Tensor, sizes: torch.Tensor, norm: str = "l2") -> torch.Tensor:
    """[..., E] score of each expert from ``h`` [..., width] in the layout (``split_scores``)."""
    return split_scores(h, expert_split(sizes), norm)


def block_scores(blocks: torch.Tensor, norm: str = "l2") -> torch.Tensor:
    """[..., n, size] equal-size expert slices -> [..., n] scores, in at least float32.

    ``norm``: l2, l1, mean (mean |h|), max (max |h|).
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
    """Reorder every FFN into the expert layout (``slice_order``); restore the original order on
    exit.

    Yields the per-layer expert sizes [E] (int64), larger experts first. The caller checks that
    the partition fits the model (``check_partition_fits``), once.
    """
    check_canonical(partition)
    layers = ffns(model)
    orders = [layout_order(partition, f.layer) for f in layers]
    # The reordered weights are made outside inference mode (also under a caller's): inference
    # tensors keep no version counter, so a partition check could not be remembered across
    # the layout (digests_kept) and every later check would hash a 7B model again.
    with digests_kept(model) as inside:
        with torch.inference_mode(False):  # select_neurons runs under no_grad itself
            for ffn, order in zip(layers, orders, strict=True):
                ffn.select_neurons(order)
        inside()
        try:
            yield [row for row in partition.sizes()]
        finally:
            inside()
            with torch.inference_mode(False):
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
        self.split = expert_split(sizes)
        self.register_buffer("experts", column_experts(sizes), persistent=False)  # [width]
        self.mask: torch.Tensor | None = None
        self.top_k: int | None = None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.top_k is not None:
            scores = split_scores(h, self.split)
            chosen = scores.topk(self.top_k, dim=-1).indices
            gate = torch.zeros_like(scores).scatter_(-1, chosen, 1.0)
            h = h * gate.to(h.dtype)[..., self.experts]
        if self.mask is not None:
            h = h * self.mask.to(h.device, h.dtype)[self.experts]
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
