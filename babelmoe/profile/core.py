"""The profiling loop: batches through the model with hooks, counts on the device.

``profile_batches`` is the whole computation of stage 2 for already-built batches; the runner
around it does the I/O (corpus, artifacts, checkpoints). Host syncs happen only every
``sync_every`` batches (the non-finite check and the checkpoint callback).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from babelmoe.errors import BabelmoeError
from babelmoe.experts.moe_view import expert_layout
from babelmoe.experts.partition import Partition
from babelmoe.models.ffn import decoder_layers, ffns
from babelmoe.profile.accumulate import Accumulator
from babelmoe.profile.batches import Batch
from babelmoe.profile.hooks import ScoreRecorder, recording
from babelmoe.profile.scoring import Selection

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scoring:
    """How experts are scored and selected (see ``babelmoe.profile.scoring``)."""

    norm: str = "l2"
    selection: Selection = "global"
    top_frac: float = 0.10
    zscore: bool = True
    compile: bool = True  # fuse the per-layer statistics with torch.compile (CUDA only)
    compile_layers: bool = False  # also torch.compile every decoder layer (CUDA only)


@contextlib.contextmanager
def compiled_layers(model: nn.Module, enabled: bool) -> Iterator[None]:
    """``torch.compile`` every decoder layer for the block (hooks inside are traced too)."""
    if not enabled:
        yield
        return
    import torch._dynamo

    layers = decoder_layers(model)
    # Each layer's hook closes over its own index, so every layer is its own graph: allow that
    # many (the default limit of 8 would leave the later layers eager); a layer that cannot
    # compile runs eagerly. The settings hold for the block only.
    config = torch._dynamo.config
    settings = config.patch(
        suppress_errors=True,
        cache_size_limit=max(config.cache_size_limit, 2 * len(layers) + 8),
        accumulated_cache_size_limit=max(config.accumulated_cache_size_limit, 4 * len(layers) + 64),
    )
    for layer in layers:
        layer.compile(dynamic=False)
    try:
        with settings:
            yield
    finally:
        for layer in layers:
            layer._compiled_call_impl = None


def decoder_stack(model: nn.Module) -> nn.Module:
    """The model without its LM head (profiling needs no logits)."""
    return getattr(model, "base_model", model)


def _to(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a host tensor to ``device`` without blocking the host (pinned memory on CUDA)."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def _raise_nonfinite(layer: int) -> None:
    raise BabelmoeError(
        f"NaN or inf in the FFN activations of layer {layer} (numerical overflow)",
        "run with --dtype bfloat16 or --dtype float32 instead of float16",
    )


@torch.inference_mode()
def profile_batches(
    model: nn.Module,
    partition: Partition,
    batches: list[Batch],
    n_lang: int,
    n_units: int,
    scoring: Scoring,
    *,
    start: int = 0,
    state: dict[str, torch.Tensor] | None = None,
    rank: int = 0,
    world_size: int = 1,
    sync_every: int = 50,
    on_sync: Callable[[int, Accumulator], None] | None = None,
) -> Accumulator:
    """Count, per group, how often each (layer, expert) is selected over ``batches``.

    Rank ``rank`` of ``world_size`` takes batches ``i`` with ``i % world_size == rank``; batches
    before ``start`` are skipped (already in ``state``). ``on_sync(next_batch, accumulator)`` is
    called every ``sync_every`` batches, for checkpoints. Counts are not all-reduced here.
    """
    layers = ffns(model)
    device = layers[0].down.weight.device
    accumulator = Accumulator(
        n_lang,
        n_units,
        len(layers),
        partition.n_experts,
        device,
        scoring.top_frac,
        scoring.selection,
        scoring.zscore,
    )
    if state is not None:
        accumulator.load_state(state)
    stack = decoder_stack(model)
    input_device = model.get_input_embeddings().weight.device
    todo = [i for i in range(start, len(batches)) if i % world_size == rank]
    counted = sum(batches[i].n_counted for i in todo)
    on_cuda = device.type == "cuda"
    with expert_layout(model, partition) as sizes:
        recorder = ScoreRecorder(
            layers, sizes, scoring.norm, accumulator, device, scoring.compile and on_cuda
        )
        with (
            recording(recorder),
            compiled_layers(model, scoring.compile_layers and on_cuda),
            tqdm(
                total=counted,
                unit="tok",
                desc="profile",
                disable=rank != 0,
                unit_scale=True,
                smoothing=0.1,
            ) as bar,
        ):
            for step, index in enumerate(todo, start=1):
                batch = batches[index]
                recorder.begin(_to(batch.group, device))
                stack(
                    input_ids=_to(batch.input_ids, input_device),
                    attention_mask=None if batch.full else _to(batch.attention_mask, input_device),
                    use_cache=False,
                )
                recorder.end()
                bar.update(batch.n_counted)
                if step % sync_every == 0 or step == len(todo):
                    bad = recorder.first_nonfinite_layer()
                    if bad is not None:
                        _raise_nonfinite(bad)
                    if on_sync is not None:
                        on_sync(index + 1, accumulator)
    return accumulator
