"""The runner of ``babelmoe analyse``: read a run folder, compute, write tables and figures.

``run_analysis(config, run_dir, seed_runs=...)`` writes into ``RUN_DIR/analysis/``: the tables of
``analysis.records`` (and of ``analysis.seeds`` when seed runs are given) as CSV + JSON,
``clustering.json``, ``figures.json`` (captions of the figures) and ``summary.json``; figures go
to ``RUN_DIR/figures/``. Family against script and the shared-expert null model go to
``RUN_DIR/family_vs_script/`` (see ``stages.family_script``; their blocks are also in
``summary.json``). A re-run replaces the previous analysis (it is derived data).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from babelmoe import artifacts
from babelmoe.analysis.config import AnalysisConfig
from babelmoe.analysis.expert_null import ExpertNullConfig
from babelmoe.analysis.io import clean, write_tables
from babelmoe.analysis.label_null import LabelNullConfig
from babelmoe.analysis.profile_analysis import AnalysisResult, analyse_profile
from babelmoe.analysis.script_genealogy import ScriptGenealogyConfig
from babelmoe.analysis.seeds import SeedStudy, compare_seeds, seed_tables
from babelmoe.analysis.summary import build_summary
from babelmoe.analysis.tables import analysis_tables
from babelmoe.errors import BabelmoeError
from babelmoe.profile.artifact import ProfileData, load_profile
from babelmoe.stages.family_script import FOLDER as FAMILY_SCRIPT_DIR
from babelmoe.stages.family_script import run_family_script
from babelmoe.stages.language_null import run_language_null
from babelmoe.stages.units import ensure_unit_documents

logger = logging.getLogger(__name__)


def load_partition_labels(run_dir: Path) -> np.ndarray | None:
    """[L, width] expert labels of a run's partition, or None when it has none (checked)."""
    run_dir = Path(run_dir)
    if not artifacts.artifact_exists(run_dir, artifacts.PARTITION):
        return None
    tensors, _ = artifacts.load_artifact(run_dir, artifacts.PARTITION, kind="partition")
    if "labels" not in tensors:
        raise BabelmoeError(f"{run_dir}/partition.safetensors has no labels", "re-run split")
    return tensors["labels"].numpy()


def _check_same_study(
    main: ProfileData, other: ProfileData, main_dir: Path, other_dir: Path
) -> None:
    if (main.n_layers, main.n_experts, main.codes) != (
        other.n_layers,
        other.n_experts,
        other.codes,
    ):
        raise BabelmoeError(
            f"seed run {other_dir} does not match {main_dir}: {other.n_layers} layers x "
            f"{other.n_experts} experts, languages {', '.join(other.codes)} vs "
            f"{main.n_layers} x {main.n_experts}, {', '.join(main.codes)}",
            "pass runs of the same model, corpus and expert count that differ only in the seed",
        )
    for key in ("model", "corpus"):
        if main.meta.get(key) != other.meta.get(key):
            logger.warning("seed run %s has a different %s than %s", other_dir, key, main_dir)


# every output folder at once or none (a failure leaves the earlier analysis as it was)
@artifacts.replaces_together(artifacts.ANALYSIS_DIR, artifacts.FIGURES_DIR, FAMILY_SCRIPT_DIR)
def run_analysis(
    config: AnalysisConfig | None,
    run_dir: Path,
    *,
    seed_runs: Sequence[Path] = (),
    figures: bool = True,
    covariates: bool = False,
) -> dict[str, Any]:
    """Analyse ``RUN_DIR``'s profile (and the seed study); returns the summary.

    ``covariates``: first write ``RUN/covariates/`` when it is missing (loading the model the
    profile records; see :mod:`babelmoe.stages.covariates`), once the inputs are checked."""
    config = config or AnalysisConfig()
    run_dir = Path(run_dir)
    profile = ensure_unit_documents(load_profile(run_dir))
    logger.info(
        "analysing %s: %d languages, %d layers x %d experts",
        run_dir,
        len(profile.codes),
        profile.n_layers,
        profile.n_experts,
    )
    seeds = [(Path(d), load_profile(Path(d))) for d in seed_runs]
    for seed_dir, other in seeds:  # refuse a mismatch before any work
        _check_same_study(profile, other, run_dir, seed_dir)
    if covariates:
        from babelmoe.stages.covariates import ensure_covariates

        ensure_covariates(run_dir)
    # steps: the main profile, each seed run, tables and figures, family vs script
    bar = tqdm(total=3 + len(seeds), desc="analyse", unit="step", disable=None)
    result = analyse_profile(profile, config)
    bar.update()
    study: SeedStudy | None = None
    if seeds:
        results: list[AnalysisResult] = [result]
        labels = [load_partition_labels(run_dir)]
        for seed_dir, other in seeds:
            logger.info("analysing seed run %s", seed_dir)
            results.append(
                analyse_profile(
                    other, config, bootstrap_metrics=[config.primary_metric], seed_run=True
                )
            )
            bar.update()
            labels.append(load_partition_labels(seed_dir))
        study = compare_seeds(results, labels, [str(run_dir), *(str(d) for d, _ in seeds)])

    out = run_dir / artifacts.ANALYSIS_DIR
    with artifacts.run_lock(run_dir):
        write_tables(
            out, analysis_tables(result, profile.unit_tokens.numpy(), config.statistics.alpha)
        )
        if study is not None:
            write_tables(out, seed_tables(study, config.statistics.alpha))
        artifacts.atomic_write_json(
            out / artifacts.CLUSTERING_FILE,
            clean(
                {
                    "schema_version": artifacts.SCHEMA_VERSION,
                    "kind": "clustering",
                    "languages": result.codes,
                    "metric": result.primary,
                    "method": config.linkage,
                    "linkage": result.linkage,
                    "order": [result.codes[i] for i in result.order],
                    "genealogy_linkage": result.genealogy_linkage,
                    "genealogy_order": [result.codes[i] for i in result.genealogy_order],
                    "distance": result.distance,
                    "genealogical_distance": result.references["genealogy"],
                }
            ),
        )
        entries: list[dict[str, Any]] = []
        if figures:
            from babelmoe.plots.figures import analysis_figures

            entries = analysis_figures(
                result,
                study,
                run_dir / artifacts.FIGURES_DIR,
                config.shared_threshold,
                config.statistics.alpha,
            )
        artifacts.atomic_write_json(
            out / artifacts.FIGURES_FILE,
            {"schema_version": artifacts.SCHEMA_VERSION, "kind": "figures", "figures": entries},
        )
        summary = build_summary(result, config, profile.meta, study)
    bar.update()
    # Family against script and the shared-expert null model: RUN/family_vs_script/ (its own
    # tables, figures and report section); their blocks and sentences also go into summary.json.
    blocks = run_family_script(
        family_script_config(config),
        run_dir,
        null_cfg=expert_null_config(config),
        profile=profile,
        distance_samples=result.distance_samples,
        figures=figures,
    )
    bar.update()
    bar.close()
    summary["family_vs_script"] = blocks["family_vs_script"]
    summary["expert_null"] = blocks["expert_null"]
    # Shared and specific experts against permuted language labels: RUN/language_null/, and the
    # expert claims RUN/family_vs_script/claims_experts.json.
    stats = config.statistics
    if stats.label_permutations > 0:
        blocks["language_null"] = run_language_null(
            label_null_config(config),
            run_dir,
            profile=profile,
            null_cfg=expert_null_config(config),
            n_bootstrap=stats.n_bootstrap,
            paired=stats.bootstrap_paired,
            ci_level=stats.ci_level,
        )
        summary["language_null"] = blocks["language_null"]
    keys = (("family_vs_script", "family vs script"), ("expert_null", "null model"))
    keys += (("language_null", "language-label null"),)
    for key, topic in keys:
        if blocks.get(key) is not None:
            summary["findings"] += [{"topic": topic, "text": t} for t in blocks[key]["findings"]]
    summary["notes"] = [*summary.get("notes", []), *blocks["notes"]]
    with artifacts.run_lock(run_dir):
        artifacts.atomic_write_json(out / artifacts.SUMMARY_FILE, summary)
    logger.info("wrote %s", out)
    return summary


# The sub-analyses follow the analysis config: its statistics as they are (each reads the fields
# it lists in STATISTICS), and these settings by the same names (the rest are their own).
FAMILY_SCRIPT_SETTINGS = ("kl_epsilon", "script_measure", "genealogy_measure")
THRESHOLDS = ("shared_threshold", "specific_high", "specific_low")


def _settings(config: AnalysisConfig, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(config, name) for name in names}


def family_script_config(config: AnalysisConfig) -> ScriptGenealogyConfig:
    """The family-against-script settings that follow the analysis config."""
    settings = _settings(config, FAMILY_SCRIPT_SETTINGS)
    return ScriptGenealogyConfig(
        metric=config.primary_metric, statistics=config.statistics, **settings
    )


def expert_null_config(config: AnalysisConfig) -> ExpertNullConfig:
    """The null model's thresholds, level and seed: the analysis config's."""
    return ExpertNullConfig(statistics=config.statistics, **_settings(config, THRESHOLDS))


def label_null_config(config: AnalysisConfig) -> LabelNullConfig:
    """The language-label null's thresholds, draws, level and seed: the analysis config's."""
    return LabelNullConfig(statistics=config.statistics, **_settings(config, THRESHOLDS))
