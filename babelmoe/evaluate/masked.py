"""Many pruning configurations evaluated on one loaded model: masks instead of surgery.

Removing experts (``babelmoe.prune.surgery``) keeps, in every layer, the FFN neurons whose expert
survives; the pruned FFN computes exactly the dense FFN with the removed neurons' activations
zeroed at the input of the output projection (the down projection's bias is untouched). So a
configuration can be evaluated on the dense model by multiplying that input by a 0/1 mask
per neuron, with no weight copied or cut:

    h [B, S, width]  ->  h * keep[config of the row]  ->  down_proj

``masked_ffns`` wraps every output projection in a ``NeuronMask`` holding the keep masks of all
configurations of the block (a table [C, width] per layer, on the layer's device). Which
configuration a forward uses is a tensor of row indices (``MaskedFFNs.use``: one configuration
for every row; ``MaskedFFNs.set_rows``: one per row of the batch), so switching configurations
is a pointer assignment, and several configurations share one forward pass (different masks
for different rows). Perplexities equal those of the physically pruned model within float
tolerance (the products skip zeros instead of adding them; tests compare both on several
families). ``babelmoe prune --out`` still cuts the weights: it writes a smaller checkpoint.

``masked_perplexities`` evaluates many (configuration, language) pairs at the speed of the
forward pass: every document is cut into the windows ``perplexity`` uses
(``babelmoe.evaluate.perplexity.plan_windows``), the windows of all pairs are pooled, sorted by
length and packed into batches of about ``batch_tokens`` positions (``make_batches``: rows of
similar length, little padding, rows right-padded so no attention mask is needed), each row
carrying its configuration; on CUDA the decoder layers are compiled once for every batch shape
(``babelmoe.profile.core.compiled_layers``), and the negative log-likelihoods are summed per
window on the device, read back once at the end (no host synchronisation per batch).
``evaluate_masked`` is the one-call form (it enters ``masked_ffns`` itself)::

    from babelmoe.evaluate.masked import evaluate_masked
    results = evaluate_masked(model, tokenizer, partition,
                              {"dense": None, "sort-en": drop_en},   # drop: bool [L, E]
                              {"en": en_texts, "fr": fr_texts})
    results["sort-en", "fr"].ppl
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from babelmoe.errors import BabelmoeError
from babelmoe.evaluate.encoding import encode, eval_mode, input_device, pad_token_id
from babelmoe.evaluate.perplexity import (
    DocumentPerplexity,
    PerplexityConfig,
    PerplexityResult,
    plan_windows,
)
from babelmoe.experts.partition import Partition
from babelmoe.models.ffn import ffns

logger = logging.getLogger(__name__)

# float32 logits materialised at once by the loss (elements): bounds its memory at ~256 MiB
LOSS_CHUNK = 1 << 26


@dataclass(frozen=True)
class MaskedEvalConfig:
    """How masked evaluation batches and runs (not what it computes: results do not depend on
    it beyond float rounding).

    Attributes:
        batch_tokens: positions per forward pass (rows x padded width); the logits of a batch are
            [positions, vocabulary] in the model's dtype, so lower it for very large vocabularies
            or small GPUs.
        cpu_batch_tokens: positions per forward pass on the CPU, where memory, not the batch,
            limits: a batch's float32 logits over Gemma's 262k vocabulary take 1 GB per 1,024
            positions and the model's soft-capping copies them twice (the main job's sweep
            peaked at 6.5 GB of RAM with ``batch_tokens``; batches of a few hundred positions
            keep the CPU's matrix units as busy).
        compile: on CUDA, ``torch.compile`` the decoder layers (one graph for every batch shape)
            when the evaluation is large enough to win the compilation back; ignored on CPU.
        compile_min_tokens: compile only from this many positions on. The compiled Llama-2-7B
            forward runs 27% faster than the eager one (45.0k vs 35.4k tok/s on an H200,
            benchmarks/RESULTS.md), about 6 us per token, and compiling the masked layers cost
            4.1 s on an H100 (the first batch, inductor's cache cold for them): it pays from
            about 0.7M positions; the main job's sweep computes 0.19M (bench_run.py).
    """

    batch_tokens: int = 16384
    cpu_batch_tokens: int = 512
    compile: bool = True
    compile_min_tokens: int = 1_000_000

    def positions_per_batch(self, device: torch.device) -> int:
        """``batch_tokens``, or ``cpu_batch_tokens`` on the CPU."""
        return self.cpu_batch_tokens if device.type == "cpu" else self.batch_tokens

    def should_compile(self, device: torch.device, positions: int) -> bool:
        """Whether an evaluation of ``positions`` positions on ``device`` compiles."""
        from babelmoe.profile.core import COMPILE_DEVICE_TYPES

        return (
            self.compile
            and device.type in COMPILE_DEVICE_TYPES
            and positions >= self.compile_min_tokens
        )

    def __post_init__(self) -> None:
        if min(self.batch_tokens, self.cpu_batch_tokens) < 2:
            raise BabelmoeError(
                f"batch_tokens must be >= 2, got {self.batch_tokens}", "pass e.g. 16384"
            )


def keep_masks(partition: Partition, drops: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """[L, C, width] bool: per layer and configuration, whether each neuron's expert survives
    (``drops[c]``: bool [L, E] experts removed, None for the dense model)."""
    shape = (partition.n_layers, partition.n_experts)
    labels = partition.labels.long()  # [L, width]
    out = torch.ones(partition.n_layers, len(drops), partition.width, dtype=torch.bool)
    for c, drop in enumerate(drops):
        if drop is None:
            continue
        if tuple(drop.shape) != shape:
            raise BabelmoeError(
                f"configuration {c} removes experts of shape {tuple(drop.shape)}, the partition "
                f"has {shape[0]} layers x {shape[1]} experts",
                "select experts with a profile made with this partition",
            )
        out[:, c] = ~drop.bool().cpu().gather(1, labels)
    return out


class NeuronMask(nn.Module):
    """Wraps an FFN's output projection: its input is multiplied by the keep mask of the
    configuration of each row (``rows``: [R] indices into ``table``, R = 1 or the batch size).

    ``table`` and ``rows`` are plain tensor attributes (not buffers), so compiled decoder layers
    take them as graph inputs of dynamic size: one graph serves every layer and batch."""

    def __init__(self, down: nn.Module, table: torch.Tensor) -> None:
        super().__init__()
        self.down = down
        self.table = table  # [C, width] 0/1 in the activation's dtype
        self.rows: torch.Tensor = torch.zeros(1, dtype=torch.long, device=table.device)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        mask = self.table[self.rows]  # [R, width]
        if h.dim() == 3:
            mask = mask.unsqueeze(1)  # [R, 1, width] against h [B, S, width]
        return self.down(h * mask)


class MaskedFFNs:
    """The handle ``masked_ffns`` yields: which configuration(s) the next forwards use."""

    def __init__(self, wrappers: list[NeuronMask], n_configs: int) -> None:
        self.wrappers = wrappers
        self.n_configs = n_configs
        self._single = [
            [torch.tensor([c], device=w.table.device) for c in range(n_configs)] for w in wrappers
        ]

    def use(self, config: int) -> None:
        """Every row of the next forwards runs configuration ``config`` (no device work)."""
        if not 0 <= config < self.n_configs:
            raise IndexError(f"configuration {config} of {self.n_configs}")
        for wrapper, single in zip(self.wrappers, self._single, strict=True):
            wrapper.rows = single[config]

    def set_rows(self, rows: torch.Tensor) -> None:
        """Row b of the next forward runs configuration ``rows[b]`` (``rows`` [B] int64)."""
        for wrapper in self.wrappers:
            wrapper.rows = (
                rows if rows.device == wrapper.table.device else rows.to(wrapper.table.device)
            )


@contextlib.contextmanager
def masked_ffns(
    model: nn.Module, partition: Partition, drops: Sequence[torch.Tensor | None]
) -> Iterator[MaskedFFNs]:
    """Wrap every FFN's output projection in a ``NeuronMask`` for configurations ``drops``
    (bool [L, E] each, None: dense) for the block; configuration 0 is active on entry. The
    original modules are put back on exit, even on error; no weight is changed."""
    layers = ffns(model)
    if len(layers) != partition.n_layers or any(f.width != partition.width for f in layers):
        raise BabelmoeError(
            f"the partition is for {partition.n_layers} layers x {partition.width} neurons, the "
            f"model has {len(layers)} x {sorted({f.width for f in layers})}",
            "evaluate the dense model the partition was made for",
        )
    if not drops:
        raise BabelmoeError("no configuration to evaluate", "pass at least one")
    keep = keep_masks(partition, drops)
    wrappers = []
    try:
        for ffn, layer_keep in zip(layers, keep, strict=True):
            device, dtype = ffn.activation_placement()
            table = layer_keep.to(device=device, dtype=dtype)
            wrapper = NeuronMask(ffn.down, table)
            setattr(ffn.module, ffn.arch.down, wrapper)
            wrappers.append((ffn, wrapper))
        yield MaskedFFNs([w for _, w in wrappers], len(drops))
    finally:
        for ffn, wrapper in wrappers:
            setattr(ffn.module, ffn.arch.down, wrapper.down)


@dataclass
class MaskedTimings:
    """Where the time of one ``masked_perplexities`` call went."""

    requests: int = 0  # windows evaluated (over all pairs)
    tokens: int = 0  # target tokens scored
    positions: int = 0  # positions the model computed (rows x padded width)
    batches: int = 0
    plan_s: float = 0.0  # tokenising, windows and batches
    first_batch_s: float = 0.0  # compilation included
    total_s: float = 0.0  # every batch, up to the final read-back
    graphs: int = 0  # graphs compiled for the decoder layers
    limit_hits: int = 0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.total_s if self.total_s > 0 else math.nan

    @property
    def steady_tokens_per_s(self) -> float:
        steady = self.total_s - self.first_batch_s
        return self.steady_tokens / steady if steady > 0 else math.nan

    steady_tokens: int = 0  # target tokens after the first batch

    def as_dict(self) -> dict[str, float | int]:
        from dataclasses import asdict

        return {
            **asdict(self),
            "tokens_per_s": self.tokens_per_s,
            "steady_tokens_per_s": self.steady_tokens_per_s,
        }


@dataclass
class _Plan:
    """Every window of every pair: the rows ``make_batches`` packs."""

    batches: list = field(default_factory=list)
    request_config: list[int] = field(default_factory=list)  # [R] configuration of a window
    request_owner: list[tuple[int, int]] = field(default_factory=list)  # (pair, document)
    request_targets: list[int] = field(default_factory=list)


def plan_batches(
    tokenizer,
    documents: Mapping[str, Sequence[str]],
    pairs: Sequence[tuple[int, str]],
    config: PerplexityConfig,
    batch_tokens: int,
) -> _Plan:
    """The batches that evaluate ``pairs`` ((configuration index, language) each): every
    document's windows as ``perplexity`` cuts them, once per pair, the target tokens of window
    r marked with group r (-1: context, BOS, padding)."""
    from babelmoe.profile.batches import TokenRow as Row
    from babelmoe.profile.batches import make_batches

    encoded: dict[str, list[list[int]]] = {}
    windows: dict[str, list[tuple[int, tuple[int, ...], int]]] = {}
    for lang in dict.fromkeys(lang for _, lang in pairs):
        if lang not in documents:
            raise BabelmoeError(f"no documents for language {lang!r}", "pass its texts")
        texts = documents[lang]
        if isinstance(texts, str) or not texts:
            raise BabelmoeError(
                f"no documents to compute perplexity on for {lang!r}",
                "pass a non-empty list of strings",
            )
        encoded[lang] = [encode(tokenizer, text, add_bos=config.add_bos) for text in texts]
        windows[lang] = [
            (d, tuple(ids[w.begin : w.end]), w.n_targets)
            for d, ids in enumerate(encoded[lang])
            for w in plan_windows(len(ids), config.max_length, config.effective_stride)
        ]
        if not windows[lang]:
            raise BabelmoeError(
                f"the {len(texts)} documents of {lang!r} hold no token to predict",
                "pass non-empty documents (without BOS, a document needs at least two tokens)",
            )
    plan = _Plan()
    rows = []
    for p, (c, lang) in enumerate(pairs):
        for d, ids, k in windows[lang]:
            r = len(plan.request_config)
            plan.request_config.append(c)
            plan.request_owner.append((p, d))
            plan.request_targets.append(k)
            rows.append(Row(ids, (-1,) * (len(ids) - k) + (r,) * k))
    plan.batches = make_batches(rows, None, pad_token_id(tokenizer), batch_tokens)
    return plan


def _to(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def _row_nll(logits: torch.Tensor, ids: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
    """[B] float64 sum of -log p(ids[t] | ids[:t]) over the positions t with ``scored[:, t]``
    (logits [B, S, V], ids and scored [B, S]); the log-softmax in float32 (or wider), a few
    rows at a time."""
    n_rows, width, vocab = logits.shape
    wide = torch.promote_types(logits.dtype, torch.float32)
    step = max(1, LOSS_CHUNK // max(1, (width - 1) * vocab))
    sums = []
    for start in range(0, n_rows, step):
        part = logits[start : start + step, :-1].to(wide)  # predicts positions 1..S-1
        target = ids[start : start + step, 1:]
        nll = torch.nn.functional.cross_entropy(
            part.flatten(0, 1), target.flatten(), reduction="none"
        ).view(target.shape)
        sums.append((nll.double() * scored[start : start + step, 1:]).sum(1))
    return torch.cat(sums)


@torch.inference_mode()
def masked_perplexities(
    model: nn.Module,
    tokenizer,
    masks: MaskedFFNs,
    documents: Mapping[str, Sequence[str]],
    pairs: Sequence[tuple[int, str]],
    config: PerplexityConfig | None = None,
    eval_config: MaskedEvalConfig | None = None,
    *,
    desc: str = "masked perplexity",
    compiled: bool = False,
) -> tuple[list[PerplexityResult], MaskedTimings]:
    """Perplexity of each ``(configuration, language)`` pair (the configuration an index into
    the ``masked_ffns`` block of ``masks``), as ``perplexity`` computes it on the pruned model;
    results in the order of ``pairs``, with where the time went.

    ``compiled``: the caller holds ``compiled_layers`` around several calls (one compilation for
    all); else, on CUDA with ``eval_config.compile``, this call compiles the layers itself."""
    from babelmoe.profile.core import compiled_layers

    config = config or PerplexityConfig()
    eval_config = eval_config or MaskedEvalConfig()
    timings = MaskedTimings()
    began = time.perf_counter()
    for c, _ in pairs:
        if not 0 <= c < masks.n_configs:
            raise IndexError(f"configuration {c} of {masks.n_configs}")
    device = input_device(model)
    plan = plan_batches(
        tokenizer, documents, pairs, config, eval_config.positions_per_batch(device)
    )
    n_requests = len(plan.request_config)
    request_config = torch.tensor(plan.request_config, dtype=torch.long).to(device)
    sums = torch.zeros(n_requests + 1, dtype=torch.float64, device=device)  # + a spare slot
    timings.plan_s = time.perf_counter() - began
    timings.requests, timings.tokens = n_requests, sum(plan.request_targets)
    positions = sum(b.n_positions for b in plan.batches)
    compile_ = not compiled and eval_config.should_compile(device, positions)
    with (
        eval_mode(model),
        compiled_layers(model, compile_) as report,
        tqdm(total=timings.tokens, unit="tok", desc=desc, disable=None, unit_scale=True) as bar,
    ):
        began = time.perf_counter()
        for step, batch in enumerate(plan.batches):
            n_rows, width = batch.input_ids.shape
            ids = _to(batch.input_ids, device)
            group = _to(batch.group, device).view(n_rows, width)
            request = group.amax(1)  # [B] the row's window; -1 for a padding row
            masks.set_rows(request_config[request.clamp(min=0)])
            logits = model(input_ids=ids, use_cache=False).logits
            row_sums = _row_nll(logits, ids, (group >= 0).to(torch.float64))
            sums.index_copy_(0, torch.where(request >= 0, request, n_requests), row_sums)
            n = int((batch.group >= 0).sum())
            bar.update(n)
            timings.batches += 1
            timings.positions += batch.n_positions
            if step == 0:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                timings.first_batch_s = time.perf_counter() - began
            else:
                timings.steady_tokens += n
        nll = sums[:n_requests].tolist()  # the one read-back
        timings.total_s = time.perf_counter() - began
    timings.graphs, timings.limit_hits = report.graphs, report.limit_hits
    masks.use(0)
    results = _collect(plan, nll, documents, pairs, config)
    logger.info(
        "%s: %d pairs, %d windows, %d tokens in %d batches, %.1f s (first batch %.1f s)",
        desc,
        len(pairs),
        n_requests,
        timings.tokens,
        timings.batches,
        timings.total_s,
        timings.first_batch_s,
    )
    return results, timings


def _collect(
    plan: _Plan,
    nll: list[float],
    documents: Mapping[str, Sequence[str]],
    pairs: Sequence[tuple[int, str]],
    config: PerplexityConfig,
) -> list[PerplexityResult]:
    """Per pair, the ``PerplexityResult`` that ``perplexity`` returns (same sums, same order)."""
    per_doc: list[dict[int, list[float | int]]] = [{} for _ in pairs]
    for r, (p, d) in enumerate(plan.request_owner):
        entry = per_doc[p].setdefault(d, [0.0, 0])
        entry[0] += nll[r]
        entry[1] += plan.request_targets[r]
    results = []
    for p, (_, lang) in enumerate(pairs):
        texts = documents[lang]
        docs = [
            DocumentPerplexity(
                d,
                per_doc[p].get(d, [0.0, 0])[0],
                per_doc[p].get(d, [0.0, 0])[1],
                len(text.encode("utf-8")),
            )
            for d, text in enumerate(texts)
        ]
        results.append(PerplexityResult.of_documents(docs, config))
    return results


def evaluate_masked(
    model: nn.Module,
    tokenizer,
    partition: Partition,
    configurations: Mapping[Hashable, torch.Tensor | None],
    documents: Mapping[str, Sequence[str]],
    pairs: Sequence[tuple[Hashable, str]] | None = None,
    config: PerplexityConfig | None = None,
    eval_config: MaskedEvalConfig | None = None,
) -> dict[tuple[Hashable, str], PerplexityResult]:
    """Held-out perplexity of many pruning configurations on one loaded model.

    ``configurations``: ``{name: drop}`` (drop: bool [L, E] experts removed, None: dense);
    ``documents``: ``{language: texts}``; ``pairs``: which (name, language) to evaluate (None:
    every configuration on every language). Returns ``{(name, language): PerplexityResult}``,
    equal (within float tolerance) to ``perplexity`` on each physically pruned model.
    """
    names = list(configurations)
    index = {name: i for i, name in enumerate(names)}
    if pairs is None:
        pairs = [(name, lang) for name in names for lang in documents]
    for name, _ in pairs:
        if name not in index:
            raise BabelmoeError(f"unknown configuration {name!r}", "name one of configurations")
    with masked_ffns(model, partition, [configurations[n] for n in names]) as masks:
        results, _ = masked_perplexities(
            model,
            tokenizer,
            masks,
            documents,
            [(index[name], lang) for name, lang in pairs],
            config,
            eval_config,
        )
    return dict(zip([(name, lang) for name, lang in pairs], results, strict=True))
