"""Forward hooks that score every expert of every FFN, removed on exit even on error.

The hook sits before each FFN's output projection, whose input is the intermediate activation
``h`` [B, S, width]. Inside ``expert_layout`` experts are contiguous slices of ``h``, so a score
is one reshape and one norm per layer. Scores go into one batch buffer [T, L, E] on the device
of the first layer (layers sharded over several GPUs copy theirs there).

One hook function serves every layer, and it holds no per-layer Python value: the layer's index
is a 0-dim tensor buffer on its output projection (``LAYER_BUFFER``, removed on exit), and its
expert sizes a tuple of plain integers equal for all layers of one width. So when the decoder
layers are compiled (``babelmoe.profile.core.compiled_layers``) dynamo traces the hook into one
graph that every layer shares, instead of guarding on the index and compiling each layer apart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch._dynamo

from babelmoe.models.ffn import FFN
from babelmoe.profile.accumulate import Accumulator
from babelmoe.profile.fused import compiled_statistics, expert_split, layer_statistics

LAYER_BUFFER = "_babelmoe_layer"  # 0-dim int64 buffer on each output projection while recording
SPLIT_ATTRIBUTE = "_babelmoe_split"  # (n_big, big, small) of the layer's experts, plain ints


class ScoreRecorder:
    """Holds the per-batch buffer the hooks fill, and flags non-finite activations per layer."""

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
        self.nonfinite = torch.zeros(len(layers), dtype=torch.int64, device=device)
        self.buffer: torch.Tensor | None = None  # [T, L, E] selection values of the batch
        self.rows: torch.Tensor | None = None  # [T] accumulator rows of the batch's tokens

    def begin(self, group: torch.Tensor) -> None:
        """Prepare for a batch whose flattened tokens belong to groups ``group`` [T]."""
        self.rows = self.accumulator.rows(group)
        if self.buffer is None or self.buffer.shape[0] != group.numel():  # reused across batches
            self.buffer = torch.empty(
                group.numel(),
                self.n_layers,
                self.n_experts,
                dtype=torch.float32,
                device=self.device,
            )
        # the token count changes from batch to batch: tell the compiled layers, which reach
        # these tensors through the hook (dynamo would otherwise take their sizes as constants)
        torch._dynamo.maybe_mark_dynamic(self.rows, 0)
        torch._dynamo.maybe_mark_dynamic(self.buffer, 0)

    def record(self, module: torch.nn.Module, args: tuple) -> None:
        """The forward pre-hook of every output projection (its layer: ``module``'s buffer)."""
        h = args[0]
        fixed, values = self.statistics(
            h.reshape(-1, h.shape[-1]), getattr(module, SPLIT_ATTRIBUTE), self.norm, self.use_zscore
        )  # [T, E] each
        layer = getattr(module, LAYER_BUFFER).to(self.device, non_blocking=True).view(1)
        values = values.to(self.device, non_blocking=True)
        bad = (~torch.isfinite(values)).any().view(1).to(torch.int64)
        self.nonfinite.index_add_(0, layer, bad)
        self.buffer.index_copy_(1, layer, values.unsqueeze(1))
        self.accumulator.add_layer_fixed(layer, fixed.to(self.device, non_blocking=True), self.rows)

    def end(self) -> None:
        """Select and count the batch's experts."""
        self.accumulator.add_batch(self.buffer, self.rows)

    def first_nonfinite_layer(self) -> int | None:
        """The first layer whose activations held NaN/inf so far (one host sync)."""
        flags = self.nonfinite.cpu() > 0
        return int(flags.nonzero()[0]) if bool(flags.any()) else None


@contextlib.contextmanager
def recording(recorder: ScoreRecorder) -> Iterator[ScoreRecorder]:
    """Register the recorder's hook on every FFN output projection; always remove it."""
    handles = []
    marked = []
    try:
        for index, (ffn, split) in enumerate(zip(recorder.layers, recorder.splits, strict=True)):
            down = ffn.down
            index_tensor = torch.tensor(index, dtype=torch.int64, device=down.weight.device)
            down.register_buffer(LAYER_BUFFER, index_tensor, persistent=False)
            setattr(down, SPLIT_ATTRIBUTE, split)
            marked.append(down)
            handles.append(down.register_forward_pre_hook(recorder.record))
        yield recorder
    finally:
        for handle in handles:
            handle.remove()
        for down in marked:
            down._buffers.pop(LAYER_BUFFER, None)
            if SPLIT_ATTRIBUTE in down.__dict__:
                delattr(down, SPLIT_ATTRIBUTE)
