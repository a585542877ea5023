"""The split stage's runner: load, cluster, write the partition artifact into a run folder.

A local folder of safetensors weights is not loaded: each layer's FFN input rows are streamed
from the shards (:mod:`babelmoe.models.streaming`), so a model larger than one GPU splits on
one GPU. Other sources (the default model, GGUF, hub ids, ``.bin`` folders) are loaded whole.
Both give the same partition artifact (same identity, weights digest and labels).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import torch

from babelmoe import artifacts
from babelmoe.experts.partition import (
    KIND,
    Partition,
    SplitConfig,
    SplitProgress,
    save_partition,
    split_layers,
    split_model,
)
from babelmoe.models.loading import DEFAULT_MODEL, LoadedModel, ModelSpec, as_loaded
from babelmoe.models.streaming import StreamedCheckpoint, is_streamable

logger = logging.getLogger(__name__)

STATE_DIR = ".split_state"  # per-layer checkpoint of an unfinished split


def _resume(state_dir: Path, identity: dict) -> SplitProgress | None:
    """The layers an interrupted split of the same model and config already finished."""
    checkpoint = artifacts.load_checkpoint(state_dir, "state", "split_state", identity)
    if checkpoint is None:
        return None
    tensors, meta = checkpoint
    return SplitProgress(
        weights_sha256=meta["weights_sha256"],
        labels=list(tensors["labels"].unbind(0)),
        inertia=list(meta["inertia"]),
        seconds=list(meta["seconds"]),
    )


_PARTS = {"up": ("up",), "gate": ("gate",), "both": ("gate", "up")}

Split = Callable[[SplitProgress | None, Callable[[SplitProgress], None]], Partition]


def _streamed(spec: ModelSpec, config: SplitConfig) -> tuple[dict, Split] | None:
    """(model identity, split) reading the layers from the checkpoint, or None to load it."""
    if spec.source == DEFAULT_MODEL or not is_streamable(spec.source):
        return None
    checkpoint = StreamedCheckpoint.open(spec.source, trust_remote_code=spec.trust_remote_code)
    dtype = spec.resolved_dtype()  # as load_model would hold the weights: same digest
    if spec.device_map is None:
        device = spec.resolved_device()
    else:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    logger.debug("streaming the FFN weights of %s layer by layer, not loading it", spec.source)

    def split(
        progress: SplitProgress | None, on_layer: Callable[[SplitProgress], None]
    ) -> Partition:
        def read(start: int) -> Iterator:
            return checkpoint.ffns(_PARTS[config.source], dtype=dtype, start=start)

        return split_layers(read, config, progress=progress, on_layer=on_layer, device=device)

    return checkpoint.identity(spec.source), split


def run_split(
    config: SplitConfig,
    run_dir: Path,
    *,
    model: LoadedModel | ModelSpec,
    force: bool = False,
) -> Path:
    """Write ``run_dir/partition.{safetensors,json}``; reuse an identical existing one.

    ``model`` given as a spec of a local safetensors folder is streamed layer by layer instead of
    loaded.
    """
    out = Path(run_dir)
    with artifacts.run_lock(out):
        streamed = None if isinstance(model, LoadedModel) else _streamed(model, config)
        if streamed is not None:
            model_identity, split = streamed
        else:
            loaded = as_loaded(model)
            model_identity = loaded.identity
            module = loaded.model

            def split(
                progress: SplitProgress | None, on_layer: Callable[[SplitProgress], None]
            ) -> Partition:
                return split_model(module, config, progress=progress, on_layer=on_layer)

        identity = {"model": model_identity, "config": asdict(config)}
        if not artifacts.check_can_write(out, artifacts.PARTITION, KIND, identity, force):
            logger.info("%s already holds this partition; keeping it", out)
            return out / f"{artifacts.PARTITION}.json"
        state_dir = out / STATE_DIR

        def checkpoint(progress: SplitProgress) -> None:
            meta = {
                **identity,
                "weights_sha256": progress.weights_sha256,
                "inertia": progress.inertia,
                "seconds": progress.seconds,
            }
            tensors = {"labels": torch.stack(progress.labels)}
            artifacts.save_artifact(state_dir, "state", tensors, meta, kind="split_state")

        progress = None if force else _resume(state_dir, identity)
        try:
            partition = split(progress, checkpoint)
        except BaseException:
            if not artifacts.artifact_exists(state_dir, "state"):  # nothing worth resuming
                shutil.rmtree(state_dir, ignore_errors=True)
            raise
        path = save_partition(out, partition, model_identity)
        shutil.rmtree(state_dir, ignore_errors=True)
        inertia = partition.meta["inertia"]
        logger.info(
            "split %d layers into %d experts in %.1fs (inertia per layer %.3f .. %.3f) -> %s",
            partition.n_layers,
            partition.n_experts,
            sum(partition.meta["seconds"]),
            min(inertia),
            max(inertia),
            path,
        )
        return path
