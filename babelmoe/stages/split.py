"""The split stage's runner: load, cluster, write the partition artifact into a run folder."""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict
from pathlib import Path

import torch

from babelmoe import artifacts
from babelmoe.experts.partition import (
    KIND,
    SplitConfig,
    SplitProgress,
    save_partition,
    split_model,
)
from babelmoe.models.loading import LoadedModel, ModelSpec, load_model

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


def run_split(
    spec: ModelSpec,
    config: SplitConfig,
    out: Path,
    force: bool = False,
    loaded: LoadedModel | None = None,
) -> Path:
    """Write ``out/partition.{safetensors,json}``; reuse an identical existing one."""
    with artifacts.run_lock(out):
        loaded = loaded or load_model(spec)
        identity = {"model": loaded.identity, "config": asdict(config)}
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
            partition = split_model(loaded.model, config, progress=progress, on_layer=checkpoint)
        except BaseException:
            if not artifacts.artifact_exists(state_dir, "state"):  # nothing worth resuming
                shutil.rmtree(state_dir, ignore_errors=True)
            raise
        path = save_partition(out, partition, loaded.identity)
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
