"""Forward hooks that score every expert of every FFN, removed on exit even on error.

The hook sits before each FFN's output projection, whose input is the intermediate activation
``h`` [B, S, width]. Inside ``expert_layout`` experts are slices of ``h`` (an aligned head and a
short tail each, ``babelmoe.experts.moe_view``), so a score is a few reshapes and norms per
layer. Each layer writes its results into its own views of the batch's buffers, which live on
the device of the first layer (layers sharded over several GPUs copy theirs there):

  values   [T, L, E] float32  selection values (z-scores); layer l writes values[:, l]
  sums     [U, L, E] int64    fixed-point score sums of the U groups present in the batch
  nonfinite [L]      float32  > 0 where a layer's activations held NaN/inf

One hook function serves every layer, and it holds no per-layer Python value: the layer's slots
in the batch buffers are attributes of its output projection (``VALUES_SLOT``, ``SUMS_SLOT``:
views ``values[:, l]`` and ``sums[:, l]``, set by ``begin`` for every batch and removed on exit),
and its expert sizes a tuple of plain integers equal for all layers of one width. So when the
decoder layers are compiled (``babelmoe.profile.core.compiled_layers``) dynamo traces the hook
into one graph that every layer shares (the slots are graph inputs, with dynamic sizes).
The graph writes its layer's slots with ``copy_`` (a plain store: no index, no scatter): a
group's score sum is a matrix product of a one-hot [U, T] matrix with the fixed-point scores,
exact in float64 (integers below 2**53), where an int64 scatter-add would fall back to a slow
sorting kernel under ``torch.compile``. ``end`` flags non-finite values, adds the batch's sums
to the accumulator and counts the selected experts.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import torch

from babelmoe.experts.moe_view import expert_split
from babelmoe.models.ffn import FFN
from babelmoe.profile.accumulate import Accumulator
from babelmoe.profile.fused import compiled_statistics, layer_statistics

# Attributes of each output projection while recording: its layer's slots in the batch buffers
# (plain tensor attributes, not module buffers, whose sizes dynamo would keep static)
VALUES_SLOT = "_babelmoe_values"  # [T, E] float32: a view values[:, l]
SUMS_SLOT = "_babelmoe_sums"  # [U, E] int64: a view sums[:, l]
SPLIT_ATTRIBUTE = "_babelmoe_split"  # (n_big, big, small) of the layer's experts, plain ints


class ScoreRecorder:
    """Holds the per-batch buffers the hooks fill, and flags non-finite activations per layer."""

    def __init__(
        self,
        layers: list[FFN],
        sizes: list[torch.Tensor],
        norm: str,
        accumulator: Accumulator,
        device: torch.device,
        compile_backend: str | None = None,
    ) -> None:
        self.layers, self.norm, self.accumulator, self.device = layers, norm, accumulator, device
        self.use_zscore = accumulator.use_zscore
        self.splits = [expert_split(s) for s in sizes]
        self.statistics = (
            layer_statistics if compile_backend is None else compiled_statistics(compile_backend)
        )
        self.n_layers = len(layers)
        self.n_experts = int(sizes[0].numel())
        self.nonfinite = torch.zeros(len(layers), dtype=torch.float32, device=device)
        self.buffer: torch.Tensor | None = None  # [T, L, E] selection values of the batch
        self.sums: torch.Tensor | None = None  # [U, L, E] score sums of the batch's groups
        self.onehot: torch.Tensor | None = None  # [U, T] float64: token t is in group u
        self.groups: torch.Tensor | None = None  # [U] accumulator rows of those groups
        self.rows: torch.Tensor | None = None  # [T] accumulator row of every token

    def begin(self, group: torch.Tensor) -> None:
        """Prepare for a batch whose flattened tokens belong to groups ``group`` [T] (on the
        host: the batch's groups are found there, without waiting for the device)."""
        rows = torch.where(group < 0, self.accumulator.n_groups, group)
        groups, member = torch.unique(rows, return_inverse=True)  # [U], [T]
        # always the spare row too: U >= 2, so no compiled graph specialises for U = 1
        groups = torch.cat([groups, groups.new_tensor([self.accumulator.n_groups])])
        self.groups = _to(groups, self.device)
        self.rows = _to(rows, self.device)
        member = _to(member, self.device)
        self.onehot = (
            torch.arange(groups.numel(), device=self.device)[:, None] == member[None, :]
        ).double()
        n_tokens = group.numel()
        if self.buffer is None or self.buffer.shape[0] != n_tokens:  # reused across batches
            self.buffer = torch.empty(
                n_tokens, self.n_layers, self.n_experts, dtype=torch.float32, device=self.device
            )
        self.sums = torch.empty(
            groups.numel(), self.n_layers, self.n_experts, dtype=torch.int64, device=self.device
        )
        # Each layer's slots, as attributes of its output projection. Token and group counts
        # change from batch to batch: mark them dynamic for the compiled layers (dynamo would
        # otherwise take them as constants). Without dynamo imported nothing here is compiled.
        dynamo = sys.modules.get("torch._dynamo")
        for index, ffn in enumerate(self.layers):
            slots = {VALUES_SLOT: self.buffer[:, index], SUMS_SLOT: self.sums[:, index]}
            for name, slot in slots.items():
                setattr(ffn.down, name, slot)
                if dynamo is not None:
                    dynamo.maybe_mark_dynamic(slot, 0)
        if dynamo is not None:
            dynamo.maybe_mark_dynamic(self.onehot, 0)
            dynamo.maybe_mark_dynamic(self.onehot, 1)

    def record(self, module: torch.nn.Module, args: tuple) -> None:
        """The forward pre-hook of every output projection (its layer's slots: ``module``'s)."""
        h = args[0]
        fixed, values = self.statistics(
            h.reshape(-1, h.shape[-1]), getattr(module, SPLIT_ATTRIBUTE), self.norm, self.use_zscore
        )  # [T, E] each
        sums = self.onehot @ fixed.to(self.device, non_blocking=True)  # [U, E], exact integers
        getattr(module, VALUES_SLOT).copy_(values.to(self.device, non_blocking=True))
        getattr(module, SUMS_SLOT).copy_(sums.to(torch.int64))

    def end(self) -> None:
        """Flag non-finite values per layer, add the batch's sums, select and count experts."""
        self.nonfinite += (~torch.isfinite(self.buffer).all(dim=2).all(dim=0)).float()
        self.accumulator.score_sums.index_add_(0, self.groups, self.sums)
        self.accumulator.add_batch(self.buffer, self.rows)

    def first_nonfinite_layer(self) -> int | None:
        """The first layer whose activations held NaN/inf so far (one host sync)."""
        flags = self.nonfinite.cpu() > 0
        return int(flags.nonzero()[0]) if bool(flags.any()) else None


def _to(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a host tensor to ``device`` without blocking the host (pinned memory on CUDA)."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


@contextlib.contextmanager
def recording(recorder: ScoreRecorder) -> Iterator[ScoreRecorder]:
    """Register the recorder's hook on every FFN output projection; always remove it."""
    handles = []
    marked = []
    try:
        for ffn, split in zip(recorder.layers, recorder.splits, strict=True):
            down = ffn.down
            setattr(down, SPLIT_ATTRIBUTE, split)
            marked.append(down)
            handles.append(down.register_forward_pre_hook(recorder.record))
        yield recorder
    finally:
        for handle in handles:
            handle.remove()
        for down in marked:
            for name in (VALUES_SLOT, SUMS_SLOT, SPLIT_ATTRIBUTE):
                down.__dict__.pop(name, None)
