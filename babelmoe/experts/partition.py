"""The partition of every FFN into experts, and the split stage that computes it.

A partition assigns each of a layer's ``width`` neurons to one of ``E`` experts of equal size
(sizes differ by at most one; the larger experts carry the smallest labels). It is computed by
balanced k-means over the L2-normalised rows of the FFN input projection (``up``; or ``gate``, or
both concatenated), and saved as ``partition.safetensors`` (``labels`` int64 [L, width]) with
``partition.json`` (model identity, sha256 of the clustered weights, E, method, seed, per-layer
inertia and time).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from babelmoe import artifacts
from babelmoe.errors import BabelmoeError, setting
from babelmoe.experts import kmeans
from babelmoe.experts.config import Source, SplitConfig
from babelmoe.models.ffn import FFN, ffns
from babelmoe.threads import usable_cores

logger = logging.getLogger(__name__)

KIND = "partition"


@dataclass
class Partition:
    """Expert labels for every layer, and where they came from."""

    labels: torch.Tensor  # [L, width] int64 in [0, E)
    n_experts: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return int(self.labels.shape[0])

    @property
    def width(self) -> int:
        return int(self.labels.shape[1])

    @property
    def sha256(self) -> str:
        """Identity of this partition: its labels and the weights they were computed from."""
        digest = hashlib.sha256(self.labels.to(torch.int64).contiguous().numpy().tobytes())
        digest.update(str(self.meta.get("weights_sha256", "")).encode())
        return digest.hexdigest()

    def sizes(self) -> torch.Tensor:
        """[L, E] number of neurons in each expert."""
        return torch.stack([torch.bincount(row, minlength=self.n_experts) for row in self.labels])

    def expert_order(self, layer: int) -> torch.Tensor:
        """[width] neuron indices sorted by expert (stable): experts become contiguous slices."""
        return torch.argsort(self.labels[layer], stable=True)


class LayerRows(Protocol):
    """What the split needs of one layer: :class:`babelmoe.models.ffn.FFN` of a loaded model,
    or :class:`babelmoe.models.streaming.StreamedFFN` read from the checkpoint."""

    layer: int

    @property
    def width(self) -> int: ...

    def up_rows(self) -> torch.Tensor: ...

    def gate_rows(self) -> torch.Tensor | None: ...


def clustering_rows(ffn: FFN | LayerRows, source: Source) -> torch.Tensor:
    """[width, d] rows that k-means clusters, before normalisation."""
    gate = ffn.gate_rows()
    if source == "gate" or source == "both":
        if gate is None:
            raise BabelmoeError(
                f"{setting('source')} {source} needs a gated FFN, but this model's FFN has no gate",
                f"use {setting('source')} up",
            )
        return gate if source == "gate" else torch.cat([gate, ffn.up_rows()], dim=1)
    return ffn.up_rows()


# How a partition is tied to the weights it was made from (``partition.json``: "weights_digest").
# "per-layer": sha256 over the sha256 of every layer's clustered weights, the layers hashed in
# parallel threads (a 7B model's 2.9 GB in well under a second on a GPU host's cores).
# "stream": one sha256 over all layers' bytes in order (partitions written before 2026-11-30).
DIGEST_SCHEME = "per-layer"
DIGEST_SCHEMES = ("per-layer", "stream")


def weights_sha256(
    model: nn.Module | Iterable[LayerRows], source: Source, scheme: str = DIGEST_SCHEME
) -> str:
    """sha256 over every layer's clustered weights (as stored), to tie artifacts to weights.

    ``model``: the model, or its FFNs in layer order (streamed from the checkpoint in the
    model's dtype they hash to the same digest as the loaded model). ``scheme``: one of
    ``DIGEST_SCHEMES`` (the one a partition records).
    """
    layers = ffns(model) if isinstance(model, nn.Module) else model
    rows = ((ffn.layer, clustering_rows(ffn, source).detach()) for ffn in layers)
    digest = hashlib.sha256()
    if scheme == "stream":
        for layer, tensor in rows:
            host = _host_bytes(tensor)
            digest.update(f"{layer}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
            digest.update(host)
        return digest.hexdigest()
    for layer, dtype, shape, layer_digest in _layer_digests(rows):
        digest.update(f"{layer}|{dtype}|{shape}|{layer_digest}\n".encode())
    return digest.hexdigest()


def _host_bytes(tensor: torch.Tensor) -> memoryview:
    """The tensor's bytes on the host, without a copy when it already lives there."""
    return memoryview(tensor.to("cpu").contiguous().view(torch.uint8).numpy())


def _layer_digests(
    rows: Iterator[tuple[int, torch.Tensor]],
) -> Iterator[tuple[int, torch.dtype, tuple[int, ...], str]]:
    """(layer, dtype, shape, sha256 hex) of every layer, in order, hashed in parallel threads
    (hashlib and torch's copies release the GIL); at most ``workers`` layers held at once."""
    workers = min(8, usable_cores())

    def one(layer: int, tensor: torch.Tensor) -> tuple[int, torch.dtype, tuple[int, ...], str]:
        return (
            layer,
            tensor.dtype,
            tuple(tensor.shape),
            hashlib.sha256(_host_bytes(tensor)).hexdigest(),
        )

    with ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()
        for layer, tensor in rows:
            pending.append(pool.submit(one, layer, tensor))
            if len(pending) >= workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@dataclass
class SplitProgress:
    """Layers already clustered: what a resumed split starts from (layer i uses seed + i, so
    layers are independent and a resumed split equals an uninterrupted one)."""

    weights_sha256: str
    labels: list[torch.Tensor] = field(default_factory=list)  # [width] int64 per finished layer
    inertia: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def split_model(
    model: nn.Module,
    config: SplitConfig,
    progress: SplitProgress | None = None,
    on_layer: Callable[[SplitProgress], None] | None = None,
) -> Partition:
    """Cluster every FFN into ``config.n_experts`` balanced experts (no I/O).

    ``progress``: layers done by an interrupted run of the same split (ignored when it was made
    from other weights); ``on_layer(progress)`` is called after every layer, for checkpoints.
    """
    layers = ffns(model)
    digest = model_weights_sha256(model, config.source)
    return split_layers(
        lambda start: iter(layers[start:]), config, progress, on_layer, digest=digest
    )


def split_layers(
    read: Callable[[int], Iterator[LayerRows]],
    config: SplitConfig,
    progress: SplitProgress | None = None,
    on_layer: Callable[[SplitProgress], None] | None = None,
    device: torch.device | str | None = None,
    digest: str | None = None,
) -> Partition:
    """:func:`split_model` over layers given one at a time, e.g. streamed from the checkpoint.

    ``read(start)`` yields the FFNs of layers ``start..L-1`` in order. It is called twice: once
    for the weights digest (all layers), once for the layers left to cluster, so that memory
    holds one layer at a time. ``device``: where to cluster when ``config.device`` is
    ``auto`` (None: where the rows are). ``digest``: the weights' digest when the caller knows
    it already (``model_weights_sha256``).
    """
    widths: list[int] = []

    def noting_widths(layers: Iterator[LayerRows]) -> Iterator[LayerRows]:
        for ffn in layers:
            widths.append(ffn.width)
            yield ffn

    if digest is None:
        digest = weights_sha256(noting_widths(read(0)), config.source)
    else:
        widths += [ffn.width for ffn in read(0)]
    if len(set(widths)) != 1:
        raise BabelmoeError(
            f"FFN widths differ between layers ({sorted(set(widths))})", "split the unpruned model"
        )
    width = widths[0]
    if config.n_experts > width:
        raise BabelmoeError(
            f"{setting('n_experts')} {config.n_experts} is larger than the FFN width {width}",
            f"pass at most {width} (e.g. 256)",
        )
    if progress is None or progress.weights_sha256 != digest:
        progress = SplitProgress(weights_sha256=digest)
    elif progress.labels:
        logger.info("resuming the split at layer %d", len(progress.labels))
    labels, inertia, seconds = progress.labels, progress.inertia, progress.seconds
    target = device if config.device == "auto" else config.device
    for ffn in tqdm(
        read(len(labels)), desc="split", unit="layer", initial=len(labels), total=len(widths)
    ):
        start = time.perf_counter()
        rows = clustering_rows(ffn, config.source).detach()
        if target is not None:
            rows = rows.to(target)
        rows = torch.nn.functional.normalize(rows.float(), dim=1)
        result = kmeans.balanced_kmeans(
            rows, config.n_experts, seed=config.seed + ffn.layer, max_iter=config.max_iter
        )
        labels.append(result.labels.cpu())
        inertia.append(float(result.inertia))
        seconds.append(time.perf_counter() - start)
        logger.debug("layer %d: inertia %.4f in %.2fs", ffn.layer, inertia[-1], seconds[-1])
        if on_layer is not None:
            on_layer(progress)
    meta = {
        "method": "balanced_kmeans",
        "config": asdict(config),
        "weights_sha256": digest,
        "weights_digest": DIGEST_SCHEME,
        "inertia": inertia,
        "seconds": seconds,
    }
    return Partition(labels=torch.stack(labels), n_experts=config.n_experts, meta=meta)


def save_partition(folder: Path, partition: Partition, model_identity: dict[str, Any]) -> Path:
    """Write the partition artifact atomically."""
    meta = {
        **partition.meta,
        "model": model_identity,
        "n_experts": partition.n_experts,
        "n_layers": partition.n_layers,
        "width": partition.width,
        "partition_sha256": partition.sha256,
    }
    return artifacts.save_artifact(
        folder, artifacts.PARTITION, {"labels": partition.labels}, meta, KIND
    )


def load_partition(folder: Path) -> Partition:
    """Read and validate a partition artifact."""
    tensors, meta = artifacts.load_artifact(Path(folder), artifacts.PARTITION, KIND)
    labels = tensors.get("labels")
    if labels is None or labels.ndim != 2:
        raise BabelmoeError(
            f"{folder}/partition.safetensors has no [L, width] labels", "re-run split"
        )
    if "n_experts" not in meta:
        raise BabelmoeError(
            f"{folder}/partition.json lacks required field(s): n_experts",
            "delete it and re-run the stage that wrote it",
        )
    partition = Partition(labels=labels, n_experts=int(meta["n_experts"]), meta=meta)
    if partition.sha256 != meta.get("partition_sha256"):
        raise BabelmoeError(f"{folder}/partition.json does not match its labels", "re-run split")
    check_canonical(partition, f"{folder}/partition.safetensors")
    return partition


def check_canonical(partition: Partition, where: str = "the partition") -> None:
    """Refuse labels the expert layout cannot slice: every expert must have ``width // E`` or
    ``width // E + 1`` neurons, the larger experts carrying the smaller labels (as ``split``
    writes them). A hand-made partition can be brought into this form by relabelling."""
    sizes = partition.sizes()  # [L, E]
    for layer, row in enumerate(sizes):
        spread = int(row.max() - row.min())
        descending = bool((row[1:] <= row[:-1]).all())
        if spread > 1 or not descending or int(row.min()) == 0:
            raise BabelmoeError(
                f"{where}: layer {layer} has experts of sizes {int(row.min())}..{int(row.max())} "
                "that are not balanced in label order (sizes may differ by one, larger experts "
                "first, none empty)",
                "re-run babelmoe split, or relabel the experts so that sizes do not increase "
                "with the label",
            )


# model -> {(source, scheme): (the FFN weights' state, their digest)}: a digest is remembered
# until a weight changes (its storage or its in-place version counter), so the split of every
# seed and every later check (babelmoe steer: a context per model and generate batch; the main
# job: a profile per seed and the sweep) hash a 7B model's weights once, not ~2 s each time
_DIGESTS: weakref.WeakKeyDictionary[nn.Module, dict[tuple[str, str], tuple[tuple, str]]] = (
    weakref.WeakKeyDictionary()
)


def _weights_state(layers: list[FFN]) -> tuple | None:
    """What changes when a weight does; None when a weight is an inference tensor (one written
    under ``torch.inference_mode``): those keep no version counter, so their digest is not
    remembered."""
    params = [p for ffn in layers for p in ffn.module.parameters()]
    if any(p.is_inference() for p in params):
        return None
    return tuple((p.data_ptr(), p._version, p.dtype, tuple(p.shape)) for p in params)


def model_weights_sha256(model: nn.Module, source: Source, scheme: str = DIGEST_SCHEME) -> str:
    """``weights_sha256`` of a loaded model, remembered while its FFN weights are unchanged."""
    state = _weights_state(ffns(model))
    known = _DIGESTS.get(model, {}).get((source, scheme))
    if state is not None and known is not None and known[0] == state:
        return known[1]
    digest = weights_sha256(model, source, scheme)
    if state is not None:
        _DIGESTS.setdefault(model, {})[(source, scheme)] = (state, digest)
    return digest


@contextlib.contextmanager
def digests_kept(model: nn.Module) -> Iterator[Callable[[], None]]:
    """For a change that puts every FFN weight back exactly as it was (``expert_layout``: a
    permutation of the neurons, then its inverse): the digests remembered for the weights
    before hold for them after, so the next check does not hash them again. Not carried when
    the context ends in an error, nor when a weight changed between the first and the last
    moment inside (``inside``: called by the context's owner after its change and before
    undoing it)."""
    before = _weights_state(ffns(model))
    marks: list[tuple | None] = []

    def inside() -> None:
        marks.append(_weights_state(ffns(model)))

    yield inside
    remembered = _DIGESTS.get(model)
    after = _weights_state(ffns(model))
    if before is None or after is None or not remembered or len(marks) != 2:
        return
    if marks[0] is None or marks[0] != marks[1]:
        return
    for key, (state, digest) in list(remembered.items()):
        if state == before:
            remembered[key] = (after, digest)


def check_partition_fits(partition: Partition, model: nn.Module) -> None:
    """Refuse a partition computed for other weights (another model, or a pruned one). The
    weights are hashed once per model while they stay unchanged (``model_weights_sha256``)."""
    layers = ffns(model)
    if partition.n_layers != len(layers) or partition.width != layers[0].width:
        raise BabelmoeError(
            f"the partition is for {partition.n_layers} layers x {partition.width} neurons, "
            f"the model "
            f"has {len(layers)} x {layers[0].width}",
            "run split on this model first",
        )
    source = partition.meta.get("config", {}).get("source", "up")
    expected = partition.meta.get("weights_sha256")
    scheme = partition.meta.get("weights_digest", "stream")
    if scheme not in DIGEST_SCHEMES:
        raise BabelmoeError(
            f"the partition's weights digest {scheme!r} is unknown to this babelmoe",
            "upgrade babelmoe, or run split again with this one",
        )
    if not expected:
        return
    if model_weights_sha256(model, source, scheme) != expected:
        made_for = partition.meta.get("model", {}).get("name", "?")
        given = getattr(getattr(model, "config", None), "_name_or_path", "") or "?"
        dtype = str(layers[0].up_rows().dtype).removeprefix("torch.")
        raise BabelmoeError(
            f"the partition was made for other weights ({made_for}) than the model given "
            f"({given}, {dtype}; another {setting('dtype')} also counts as other weights)",
            f"run split on this model with this {setting('dtype')} first, or pass the partition's "
            "model",
        )
