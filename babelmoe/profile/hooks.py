"""Forward hooks that score every expert of every FFN, removed on exit even on error.

The hook sits before each FFN's output projection, whose input is the intermediate activation
``h`` [B, S, width]. Inside ``expert_layout`` experts are contiguous slices of ``h``, so a score
is one reshape and one norm per layer. Scores go into one batch buffer [T, L, E] on the device
of the first layer (layers sharded over several GPUs copy theirs there).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from babelmoe.models.ffn import FFN
from babelmoe.profile.accumulate import Accumulator
from babelmoe.profile.fused import statistics_function


class ScoreRecorder:
    """Holds the per-batch buffer the hooks fill, and flags non-finite activations per layer."""

    def __init__(
        self,
        layers: list[FFN],
        sizes: list[torch.Tensor],
        norm: str,
        accumulator: Accumulator,
        device: torch.device,
        compile: bool = True,
    ) -> None:
        self.layers, self.norm, self.accumulator, self.device = layers, norm, accumulator, device
        self.sizes = [s.to(f.down.weight.device) for s, f in zip(sizes, layers, strict=True)]
        self.functions = [
            statistics_function(f.down.weight.device, s, compile)
            for f, s in zip(layers, sizes, strict=True)
        ]
        self.n_experts = int(sizes[0].numel())
        self.nonfinite = torch.zeros(len(layers), dtype=torch.bool, device=device)
        self.buffer: torch.Tensor | None = None  # [T, L, E] selection values of the batch
        self.rows: torch.Tensor | None = None  # [T] accumulator rows of the batch's tokens

    def begin(self, group: torch.Tensor) -> None:
        """Prepare for a batch whose flattened tokens belong to groups ``group`` [T]."""
        self.rows = self.accumulator.rows(group)
        if self.buffer is None or self.buffer.shape[0] != group.numel():  # reused across batches
            self.buffer = torch.empty(
                group.numel(),
                len(self.layers),
                self.n_experts,
                dtype=torch.float32,
                device=self.device,
            )

    def hook(self, index: int):
        """The forward pre-hook for layer ``index``."""

        def record(_module: torch.nn.Module, args: tuple) -> None:
            h = args[0]
            fixed, values = self.functions[index](
                h.reshape(-1, h.shape[-1]),
                self.sizes[index],
                self.norm,
                self.accumulator.use_zscore,
            )  # [T, E] each
            values = values.to(self.device, non_blocking=True)
            self.nonfinite[index] |= ~torch.isfinite(values).all()
            self.buffer[:, index] = values
            self.accumulator.add_layer_fixed(
                index, fixed.to(self.device, non_blocking=True), self.rows
            )

        return record

    def end(self) -> None:
        """Select and count the batch's experts."""
        self.accumulator.add_batch(self.buffer, self.rows)

    def first_nonfinite_layer(self) -> int | None:
        """The first layer whose activations held NaN/inf so far (one host sync)."""
        flags = self.nonfinite.cpu()
        return int(flags.nonzero()[0]) if bool(flags.any()) else None


@contextlib.contextmanager
def recording(recorder: ScoreRecorder) -> Iterator[ScoreRecorder]:
    """Register the recorder's hooks on every FFN output projection; always remove them."""
    handles = []
    try:
        for index, ffn in enumerate(recorder.layers):
            handles.append(ffn.down.register_forward_pre_hook(recorder.hook(index)))
        yield recorder
    finally:
        for handle in handles:
            handle.remove()
