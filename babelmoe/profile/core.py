"""The profiling loop: batches through the model with hooks, counts on the device.

``profile_batches`` is the whole computation of stage 2 for already-built batches; the runner
around it does the I/O (corpus, artifacts, checkpoints). Host syncs happen only every
``sync_every`` batches or ``sync_seconds`` (the non-finite check and the checkpoint callback).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from babelmoe.errors import BabelmoeError, setting
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
    backend: str = "inductor"  # torch.compile backend of both


# Device types on which ``compile``/``compile_layers`` take effect (tests add "cpu").
COMPILE_DEVICE_TYPES = frozenset({"cuda"})


@dataclass
class CompileReport:
    """What dynamo did inside a ``compiled_layers`` block (filled in on exit)."""

    graphs: int = 0  # graphs compiled (one is the goal: shared by all layers and shapes)
    limit_hits: int = 0  # "hit config.recompile_limit" warnings (layers left to run eagerly)


class _LimitHits(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "hit config." in record.getMessage():
            self.count += 1


@contextlib.contextmanager
def compiled_layers(
    model: nn.Module, enabled: bool, backend: str = "inductor", deterministic: bool | None = None
) -> Iterator[CompileReport]:
    """``torch.compile`` every decoder layer for the block (hooks inside are traced too).

    All layers run the same code, and the profiling hooks keep their per-layer state in tensors
    (``babelmoe.profile.hooks``), so dynamo compiles one graph that every layer shares. The token
    dimensions are dynamic from the first call (no duck sizing, which would tie a sequence
    length to an equal model dimension), so new batch shapes reuse that graph; a batch of a
    single row is the one shape that gets a graph of its own (``make_batches`` avoids it). Layers
    of different widths (a model pruned per layer) need a graph per width; the recompile limit
    allows one per layer. Dynamo's code cache is cleared on entry and exit: hooks are not part
    of its guards, so a graph compiled with (or without) hooks must not outlive the block.
    A layer that cannot compile runs eagerly. The yielded report counts graphs and limit hits.

    ``deterministic``: inductor picks kernels without timing them on the device, so every
    process (data-parallel ranks, resumed runs) compiles the same kernels and the counts cannot
    depend on timing noise. None: on, unless ``TORCHINDUCTOR_DETERMINISTIC=0`` says otherwise.
    """
    report = CompileReport()
    if not enabled:
        yield report
        return
    import torch._dynamo
    import torch._inductor.config
    import torch.fx.experimental._config as shapes_config
    from torch._dynamo.utils import counters

    layers = decoder_layers(model)
    config = torch._dynamo.config
    settings = [
        _patch(
            config,
            # the hook's per-batch tensors are reached through the layer's modules: without
            # this their token dimension would be taken as constant (one graph per batch size)
            force_nn_module_property_static_shapes=False,
            suppress_errors=True,
            # room for one graph per layer, should an architecture keep per-layer constants in
            # its code (e.g. alternating attention types); the goal remains one graph
            cache_size_limit=max(config.cache_size_limit, 2 * len(layers) + 8),
            accumulated_cache_size_limit=max(
                config.accumulated_cache_size_limit, 4 * len(layers) + 64
            ),
        ),
        _patch(shapes_config, use_duck_shape=False),
        _patch(torch._inductor.config, deterministic=_deterministic(deterministic)),
    ]
    hits = _LimitHits()
    dynamo_log = logging.getLogger("torch._dynamo")
    torch._dynamo.reset()
    graphs_before = counters["stats"]["unique_graphs"]
    for layer in layers:
        layer.compile(dynamic=True, backend=backend)
    dynamo_log.addHandler(hits)
    try:
        with contextlib.ExitStack() as stack:
            for setting in settings:
                stack.enter_context(setting)
            yield report
    finally:
        dynamo_log.removeHandler(hits)
        report.graphs = counters["stats"]["unique_graphs"] - graphs_before
        report.limit_hits = hits.count
        for layer in layers:
            layer._compiled_call_impl = None
        torch._dynamo.reset()


def _deterministic(asked: bool | None) -> bool:
    if asked is not None:
        return asked
    return os.environ.get("TORCHINDUCTOR_DETERMINISTIC", "1") != "0"


def _patch(config_module, **values):
    """``config_module.patch`` with the settings this torch version has (others are skipped)."""
    return config_module.patch(**{k: v for k, v in values.items() if hasattr(config_module, k)})


def decoder_stack(model: nn.Module) -> nn.Module:
    """The model without its LM head (profiling needs no logits)."""
    return getattr(model, "base_model", model)


def _to(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a host tensor to ``device`` without blocking the host (pinned memory on CUDA)."""
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def _check_takes_position_ids(stack: nn.Module) -> None:
    """Packed rows are exact only if the model restarts positions (and its mask) per chunk."""
    if "position_ids" not in inspect.signature(stack.forward).parameters:
        raise BabelmoeError(
            f"{setting('packing')} needs a model that takes position ids; {type(stack).__name__} "
            "does not, "
            "so packed documents would attend to each other",
            f"profile without {setting('packing')} (rows are bucketed by length, with little "
            "padding)",
        )


def _raise_nonfinite(layer: int) -> None:
    raise BabelmoeError(
        f"NaN or inf in the FFN activations of layer {layer} (numerical overflow)",
        f"run with {setting('dtype')} bfloat16 or {setting('dtype')} float32 instead of float16",
    )


@dataclass
class ProfileTimings:
    """Where the time of one ``profile_batches`` call went (this process's batches only)."""

    batches: int = 0
    counted_tokens: int = 0  # tokens that count (no BOS, no padding)
    positions: int = 0  # positions the model computed (B x S summed over batches)
    padding: int = 0  # of which padding
    setup_s: float = 0.0  # before the first batch: expert layout, hooks, compile set-up
    first_batch_s: float = 0.0  # the first batch, compilation included
    total_s: float = 0.0  # all batches (from the first batch's start to the last sync)
    steady_tokens: int = 0  # counted tokens after the first batch
    steady_s: float = 0.0  # time after the first batch
    graphs: int = 0  # graphs dynamo compiled for the decoder layers
    limit_hits: int = 0  # dynamo recompile-limit warnings (must stay 0)
    peak_memory: int | None = None  # bytes, the process's peak on the model's GPU (None: CPU)

    @property
    def padding_share(self) -> float:
        return self.padding / self.positions if self.positions else 0.0

    @property
    def steady_tokens_per_s(self) -> float:
        return self.steady_tokens / self.steady_s if self.steady_s > 0 else float("nan")

    def as_dict(self) -> dict[str, float | int]:
        return {
            **asdict(self),
            "padding_share": self.padding_share,
            "steady_tokens_per_s": self.steady_tokens_per_s,
        }

    def summary(self) -> str:
        return (
            f"{self.counted_tokens:,} tokens in {self.batches} batches, {self.total_s:.1f} s "
            f"(first batch, compilation included, {self.first_batch_s:.1f} s; then "
            f"{self.steady_tokens_per_s:,.0f} tok/s); padding {100 * self.padding_share:.1f}% "
            f"of positions; {self.graphs} compiled graph(s), {self.limit_hits} recompile-limit hits"
        )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
    sync_every: int | None = 50,
    sync_seconds: float | None = None,
    on_sync: Callable[[int, Accumulator], None] | None = None,
) -> Accumulator:
    """Count, per group, how often each (layer, expert) is selected over ``batches``.

    Rank ``rank`` of ``world_size`` takes batches ``i`` with ``i % world_size == rank``; batches
    before ``start`` are skipped (already in ``state``). ``on_sync(next_batch, accumulator)`` is
    called every ``sync_every`` batches (or, with ``sync_seconds``, at the first batch that many
    seconds after the last call) and after the last batch, for checkpoints. Counts are not
    all-reduced here. The returned accumulator's ``timings`` (a ``ProfileTimings``) say where the
    time went.

    Rows are right-padded (``make_batches``), so no attention mask is passed: under causal
    attention the padding cannot reach a counted token. Packed rows pass their position ids,
    from which the model builds the mask that keeps each chunk to itself.
    """
    entered = time.perf_counter()
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
    if any(b.position_ids is not None for b in batches):
        _check_takes_position_ids(stack)
    input_device = model.get_input_embeddings().weight.device
    todo = [i for i in range(start, len(batches)) if i % world_size == rank]
    counted = sum(batches[i].n_counted for i in todo)
    can_compile = device.type in COMPILE_DEVICE_TYPES
    timings = ProfileTimings()
    with expert_layout(model, partition) as sizes:
        recorder = ScoreRecorder(
            layers,
            sizes,
            scoring.norm,
            accumulator,
            device,
            scoring.backend if scoring.compile and can_compile else None,
        )
        with (
            recording(recorder),
            compiled_layers(
                model, scoring.compile_layers and can_compile, scoring.backend
            ) as compile_report,
            tqdm(
                total=counted,
                unit="tok",
                desc="profile",
                disable=rank != 0,
                unit_scale=True,
                smoothing=0.1,
            ) as bar,
        ):
            began = last_sync = time.perf_counter()
            timings.setup_s = began - entered
            for step, index in enumerate(todo, start=1):
                batch = batches[index]
                recorder.begin(batch.group)
                inputs = {"input_ids": _to(batch.input_ids, input_device)}
                if batch.position_ids is not None:
                    inputs["position_ids"] = _to(batch.position_ids, input_device)
                stack(**inputs, use_cache=False)
                recorder.end()
                n = batch.n_counted
                bar.update(n)
                timings.batches += 1
                timings.counted_tokens += n
                timings.positions += batch.n_positions
                timings.padding += batch.n_padding
                if step == 1:
                    _sync(device)
                    timings.first_batch_s = time.perf_counter() - began
                else:
                    timings.steady_tokens += n
                due = (sync_every is not None and step % sync_every == 0) or (
                    sync_seconds is not None and time.perf_counter() - last_sync >= sync_seconds
                )
                if due or step == len(todo):
                    bad = recorder.first_nonfinite_layer()
                    if bad is not None:
                        _raise_nonfinite(bad)
                    if on_sync is not None:
                        on_sync(index + 1, accumulator)
                    last_sync = time.perf_counter()
            _sync(device)
            timings.total_s = time.perf_counter() - began
            if device.type == "cuda":
                timings.peak_memory = torch.cuda.max_memory_allocated(device)
            timings.steady_s = timings.total_s - timings.first_batch_s
    timings.graphs, timings.limit_hits = compile_report.graphs, compile_report.limit_hits
    accumulator.timings = timings
    if todo:
        logger.info("profile%s: %s", f" (rank {rank})" if world_size > 1 else "", timings.summary())
    if timings.limit_hits:
        logger.warning(
            "dynamo hit its recompile limit %d time(s): some layers ran uncompiled (slower)",
            timings.limit_hits,
        )
    return accumulator
