"""Runners of ``analyse`` and ``diff``: read run folders, compute, write tables and figures.

``run_analysis(run_dir, cfg, seed_runs)`` writes into ``RUN_DIR/analysis/``: the tables of
``analysis.records`` (and of ``analysis.seeds`` when seed runs are given) as CSV + JSON,
``clustering.json``, ``figures.json`` (captions of the figures) and ``summary.json``; figures go
to ``RUN_DIR/figures/``. A re-run replaces the previous analysis (it is derived data).

``run_diff(run_a, run_b, out, cfg)`` writes the diff tables, ``summary.json``, figures in
``OUT/figures/``, ``OUT/report.html`` and ``OUT/report_section.json``; with OUT inside a run folder
(e.g. ``RUN_B/diff_vs_base``) that run's report includes the diff as a section.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from babelmoe import artifacts
from babelmoe.analysis.compare import AnalysisResult, analyse_profile
from babelmoe.analysis.config import AnalysisConfig, DiffConfig
from babelmoe.analysis.diff import diff_profiles
from babelmoe.analysis.diff_summary import diff_summary, diff_tables
from babelmoe.analysis.records import analysis_tables
from babelmoe.analysis.seeds import SeedStudy, compare_seeds, seed_tables
from babelmoe.analysis.summary import build_summary
from babelmoe.analysis.tables import clean, write_table
from babelmoe.errors import BabelmoeError
from babelmoe.profile.artifact import ProfileData, load_profile

log = logging.getLogger(__name__)


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
            log.warning("seed run %s has a different %s than %s", other_dir, key, main_dir)


def _write_tables(folder: Path, tables: dict[str, tuple[str, list[dict[str, Any]]]]) -> None:
    for name, (description, rows) in tables.items():
        write_table(folder, name, rows, description)


def run_analysis(
    run_dir: Path,
    cfg: AnalysisConfig | None = None,
    seed_runs: Sequence[Path] = (),
    figures: bool = True,
) -> dict[str, Any]:
    """Analyse ``RUN_DIR``'s profile (and the seed study); returns the summary."""
    cfg = cfg or AnalysisConfig()
    run_dir = Path(run_dir)
    profile = load_profile(run_dir)
    log.info(
        "analysing %s: %d languages, %d layers x %d experts",
        run_dir,
        len(profile.codes),
        profile.n_layers,
        profile.n_experts,
    )
    seeds = [(Path(d), load_profile(Path(d))) for d in seed_runs]
    for seed_dir, other in seeds:  # refuse a mismatch before any work
        _check_same_study(profile, other, run_dir, seed_dir)
    result = analyse_profile(profile, cfg)
    study: SeedStudy | None = None
    if seeds:
        results: list[AnalysisResult] = [result]
        labels = [load_partition_labels(run_dir)]
        for seed_dir, other in seeds:
            log.info("analysing seed run %s", seed_dir)
            results.append(analyse_profile(other, cfg, bootstrap_metrics=[cfg.primary_metric]))
            labels.append(load_partition_labels(seed_dir))
        study = compare_seeds(results, labels, [str(run_dir), *(str(d) for d, _ in seeds)])

    out = run_dir / artifacts.ANALYSIS_DIR
    with artifacts.run_lock(run_dir):
        _write_tables(out, analysis_tables(result, profile.unit_tokens.numpy(), cfg.alpha))
        if study is not None:
            _write_tables(out, seed_tables(study, cfg.alpha))
        artifacts.atomic_write_json(
            out / "clustering.json",
            clean(
                {
                    "schema_version": artifacts.SCHEMA_VERSION,
                    "kind": "clustering",
                    "languages": result.codes,
                    "metric": result.primary,
                    "method": cfg.linkage,
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
                result, study, run_dir / artifacts.FIGURES_DIR, cfg.shared_threshold, cfg.alpha
            )
        artifacts.atomic_write_json(
            out / "figures.json",
            {"schema_version": artifacts.SCHEMA_VERSION, "kind": "figures", "figures": entries},
        )
        summary = build_summary(result, cfg, profile.meta, study)
        artifacts.atomic_write_json(out / "summary.json", summary)
    log.info("wrote %s", out)
    return summary


def run_diff(
    run_a: Path, run_b: Path, out: Path, cfg: DiffConfig | None = None, figures: bool = True
) -> dict[str, Any]:
    """Compare the profiles of two run folders; returns the diff summary."""
    from babelmoe.plots.report import SECTION_FILE, render_document
    from babelmoe.plots.sections import diff_section

    cfg = cfg or DiffConfig()
    run_a, run_b, out = Path(run_a), Path(run_b), Path(out)
    a, b = load_profile(run_a), load_profile(run_b)
    if a.n_layers != b.n_layers or a.n_experts != b.n_experts:
        raise BabelmoeError(
            f"{run_a} has {a.n_layers} layers x {a.n_experts} experts but {run_b} has "
            f"{b.n_layers} layers x {b.n_experts} experts",
            "diff two profiles of one architecture split into the same number of experts",
        )
    result = diff_profiles(a, b, cfg)
    tables = diff_tables(result, cfg)
    summary = diff_summary(result, cfg, (str(run_a), str(run_b)))
    with artifacts.run_lock(out):
        _write_tables(out, tables)
        artifacts.atomic_write_json(out / "summary.json", summary)
        entries = []
        if figures:
            from babelmoe.plots.figures import diff_figures

            entries = diff_figures(
                result, out / artifacts.FIGURES_DIR, (run_a.name, run_b.name), cfg.primary_metric
            )
        rows = {name: clean(r) for name, (_, r) in tables.items()}
        section = diff_section(summary, rows, [(out / e["png"], e["caption"]) for e in entries])
        artifacts.atomic_write_json(
            out / SECTION_FILE,
            {
                "schema_version": artifacts.SCHEMA_VERSION,
                "title": f"Model diff: {run_a.name} vs {run_b.name}",
                "order": 80,
                "html": section.html,
                "figures": [{"path": e["png"], "caption": e["caption"]} for e in entries],
            },
        )
        page = render_document(
            f"babelmoe diff: {run_a.name} vs {run_b.name}", f"A = {run_a}, B = {run_b}", [section]
        )
        artifacts.atomic_write_text(out / artifacts.REPORT_FILE, page)
    log.info("wrote %s", out)
    return summary
