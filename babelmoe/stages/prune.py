"""The prune stage's runner: run folder (partition + profile) + model -> a pruned model folder."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from babelmoe import artifacts
from babelmoe.experts.partition import Partition, check_partition_fits, load_partition
from babelmoe.models.loading import LoadedModel, ModelSpec, as_loaded
from babelmoe.profile.artifact import ProfileData, load_profile
from babelmoe.prune.criteria import PruneConfig, Selection
from babelmoe.prune.surgery import check_can_write_pruned, prune_model, save_pruned
from babelmoe.prune.targets import (
    check_profile_matches,
    language_names,
    resolve_languages,
    select_for_profile,
)

logger = logging.getLogger(__name__)


def default_out(run_dir: Path, config: PruneConfig) -> Path:
    """``RUN/pruned/<method>-<languages>-r<ratio>|t<tau>-s<seed>``."""
    amount = f"r{config.ratio:g}" if config.ratio is not None else f"t{config.tau:g}"
    langs = "+".join(config.languages) if config.method != "random" else "any"
    return Path(run_dir) / artifacts.PRUNED_DIR / f"{config.method}-{langs}-{amount}-s{config.seed}"


def load_run(run_dir: Path) -> tuple[Partition, ProfileData]:
    """The run folder's partition and profile, checked against each other."""
    partition = load_partition(Path(run_dir))
    profile = load_profile(Path(run_dir))
    check_profile_matches(profile, partition)
    return partition, profile


def pruning_identity(
    config: PruneConfig, profile_meta: dict[str, Any], partition: Partition
) -> dict[str, Any]:
    """What makes two pruned models the same: the rule, the partition and the profile."""
    return {
        "criterion": asdict(config),
        "partition_sha256": partition.sha256,
        "profile_sha256": profile_meta.get("tensors_sha256"),
        "model": profile_meta.get("model"),
    }


def pruning_record(
    config: PruneConfig, profile: ProfileData, partition: Partition, selection: Selection
) -> dict[str, Any]:
    """The record saved beside the weights: what was removed and why."""
    sizes = partition.sizes()  # [L, E]
    removed_neurons = int(sizes[selection.drop].sum())
    names = language_names(profile)
    indices = resolve_languages(profile, config.languages) if config.languages else []
    return {
        **pruning_identity(config, profile.meta, partition),
        "method": config.method,
        "languages": [names[i] for i in indices],
        "language_codes": [profile.codes[i] for i in indices],
        "ratio": config.ratio,
        "tau": config.tau,
        "seed": config.seed,
        "n_experts": partition.n_experts,
        "dense_width": partition.width,
        "experts_removed": selection.n_dropped,
        "expert_rate": selection.rate,
        "neurons_removed": removed_neurons,
        "neuron_rate": removed_neurons / (partition.n_layers * partition.width),
        "removed_experts": selection.removed_experts(),
        "notes": selection.notes,
    }


def run_prune(
    config: PruneConfig,
    run_dir: Path,
    *,
    model: LoadedModel | ModelSpec,
    out: Path | None = None,
    force: bool = False,
) -> Path:
    """Prune ``model`` for ``config`` using ``run_dir``'s partition and profile; write ``out``.

    Returns ``out``. An identical pruned model already in ``out`` is kept (a spec is then not
    loaded); a different one (or any other content) is an error unless ``force``. ``model`` is
    pruned in place when given loaded.
    """
    run_dir = Path(run_dir)
    partition, profile = load_run(run_dir)
    selection = select_for_profile(profile, config)  # validates the languages before loading
    out = Path(out) if out is not None else default_out(run_dir, config)
    identity = pruning_identity(config, profile.meta, partition)
    with artifacts.run_lock(out.parent):
        if not check_can_write_pruned(out, identity, force):
            logger.info("%s already holds this pruned model; keeping it", out)
            return out
        loaded = as_loaded(model)
        check_partition_fits(partition, loaded.model)
        for note in selection.notes:
            logger.warning("%s", note)
        widths = prune_model(loaded.model, partition, selection.drop)
        record = pruning_record(config, profile, partition, selection)
        record["dense_model"] = loaded.identity
        save_pruned(loaded.model, loaded.tokenizer, out, record)
        logger.info(
            "%s: removed %d of %d experts (%.1f%% of FFN neurons); widths %d..%d -> %s",
            config.method,
            selection.n_dropped,
            selection.drop.numel(),
            100 * record["neuron_rate"],
            min(widths),
            max(widths),
            out,
        )
    return out
