"""The split stage's runner: load, cluster, write the partition artifact into a run folder."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

from babelmoe import artifacts
from babelmoe.experts.partition import KIND, SplitConfig, save_partition, split_model
from babelmoe.models.loading import LoadedModel, ModelSpec, load_model

logger = logging.getLogger(__name__)


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
        partition = split_model(loaded.model, config)
        path = save_partition(out, partition, loaded.identity)
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
