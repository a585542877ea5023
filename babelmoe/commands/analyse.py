"""``babelmoe analyse``: similarities, tests, shared/specific experts and figures of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from babelmoe.analysis.config import DEFAULT_GROUPS, AnalysisConfig, StatisticsConfig
from babelmoe.analysis.stats.metrics import METRICS
from babelmoe.commands import common
from babelmoe.errors import BabelmoeError, check_seed

EPILOG = """Examples:

  babelmoe analyse runs/gemma3

  babelmoe analyse runs/gemma3 --seed-run runs/gemma3-seed1 --seed-run runs/gemma3-seed2

  babelmoe analyse runs/gemma3 --group Romance=fr,es,pt --group Indic=hi,bn,ur --bootstrap 2000

Writes RUN_DIR/analysis/ (tables as CSV + JSON, summary.json) and RUN_DIR/figures/ (PNG + SVG),
replacing a previous analysis. Then: babelmoe report RUN_DIR
"""
_DEFAULT_GROUPS_TEXT = "; ".join(f"{k}={','.join(v)}" for k, v in DEFAULT_GROUPS.items())


def parse_groups(values: list[str]) -> dict[str, tuple[str, ...]]:
    """``["Romance=fr,es,pt"]`` -> ``{"Romance": ("fr", "es", "pt")}``."""
    groups = {}
    for value in values:
        name, sep, members = value.partition("=")
        codes = tuple(c.strip() for c in members.split(",") if c.strip())
        if not sep or not name.strip() or len(codes) < 2:
            raise BabelmoeError(
                f"bad --group {value!r}",
                "write NAME=code,code[,...], e.g. --group Romance=fr,es,pt",
            )
        groups[name.strip()] = codes
    return groups


def analyse(
    run_dir: Annotated[Path, typer.Argument(help="Run folder holding profile.json/.safetensors.")],
    seed_run: Annotated[
        list[Path] | None,
        typer.Option(
            "--seed-run",
            "--seeds-dirs",
            help="Run folder of the same model and corpus split with another k-means seed "
            "(repeat); with RUN_DIR they are the seeds of the stability check.",
        ),
    ] = None,
    group: Annotated[
        list[str] | None,
        typer.Option(
            "--group",
            help=f"Language group to test, NAME=code,code,... (repeat). Default: "
            f"{_DEFAULT_GROUPS_TEXT}. Codes match ISO 639-3, BCP 47 or the name.",
        ),
    ] = None,
    auto_groups: Annotated[
        bool,
        typer.Option(
            "--auto-groups/--no-auto-groups",
            help="Also test every family and genus with >= 2 profiled languages.",
        ),
    ] = common.config_default(AnalysisConfig, "auto_groups"),
    metric: Annotated[
        str, typer.Option(help=f"Primary distance: {', '.join(METRICS)}.")
    ] = common.config_default(AnalysisConfig, "primary_metric"),
    shared_threshold: Annotated[
        float, typer.Option(help="Shared: frequency >= this in every language.")
    ] = common.config_default(AnalysisConfig, "shared_threshold"),
    specific_high: Annotated[
        float, typer.Option(help="Specific: frequency >= this in the language ...")
    ] = common.config_default(AnalysisConfig, "specific_high"),
    specific_low: Annotated[
        float, typer.Option(help="... and <= this in every other language.")
    ] = common.config_default(AnalysisConfig, "specific_low"),
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap resamples of documents (0: no intervals).")
    ] = common.config_default(AnalysisConfig, "statistics.n_bootstrap"),
    paired: Annotated[
        bool | None,
        typer.Option(
            "--paired/--independent",
            help="Resample the same articles in every language, or each language's documents "
            "independently. Default: paired when the corpus is parallel (UDHR).",
            show_default=False,
        ),
    ] = common.config_default(AnalysisConfig, "statistics.bootstrap_paired"),
    permutations: Annotated[
        int, typer.Option(help="Random relabelings when exact enumeration is too large.")
    ] = common.config_default(AnalysisConfig, "statistics.n_permutations"),
    label_permutations: Annotated[
        int,
        typer.Option(
            help="Permutations of language labels over documents for the language-label null "
            "of shared and specific experts (0: skip it)."
        ),
    ] = common.config_default(AnalysisConfig, "statistics.label_permutations"),
    exact_limit: Annotated[
        int, typer.Option(help="Enumerate every relabeling when there are at most this many.")
    ] = common.config_default(AnalysisConfig, "statistics.exact_limit"),
    seed: Annotated[
        int, typer.Option(help="Seed of the bootstrap and permutations.")
    ] = common.config_default(AnalysisConfig, "statistics.seed"),
    script_measure: Annotated[
        str,
        typer.Option(
            help="Script reference: script (graded: script descent and letter shares), "
            "script_letters (1 - overlap of script shares) or script_binary (majority script)."
        ),
    ] = common.config_default(AnalysisConfig, "script_measure"),
    genealogy_measure: Annotated[
        str,
        typer.Option(
            help="Genealogical reference: genealogy (Glottolog path normalised per family) or "
            "genealogy_lineage (shared depth over the sample's deepest lineage)."
        ),
    ] = common.config_default(AnalysisConfig, "genealogy_measure"),
    figures: Annotated[bool, typer.Option("--figures/--no-figures", help="Write figures.")] = True,
) -> None:
    """Compare languages' expert activation patterns, with intervals and permutation tests."""
    from babelmoe.stages.analyse import run_analysis

    config = AnalysisConfig(
        primary_metric=metric,
        groups=parse_groups(group) if group else dict(DEFAULT_GROUPS),
        auto_groups=auto_groups,
        shared_threshold=shared_threshold,
        specific_high=specific_high,
        specific_low=specific_low,
        statistics=StatisticsConfig(
            n_bootstrap=bootstrap,
            bootstrap_paired=paired,
            n_permutations=permutations,
            label_permutations=label_permutations,
            exact_limit=exact_limit,
            seed=check_seed(seed),
        ),
        script_measure=script_measure,
        genealogy_measure=genealogy_measure,
    )
    summary = run_analysis(
        config, run_dir, seed_runs=seed_run or [], figures=figures, covariates=True
    )
    for finding in summary["findings"]:
        typer.echo(f"- {finding['text']}")
    typer.echo(f"wrote {run_dir / 'analysis'}; next: babelmoe report {run_dir}")


def register(app: typer.Typer) -> None:
    """Add ``analyse`` to the program."""
    app.command("analyse", epilog=EPILOG)(analyse)
