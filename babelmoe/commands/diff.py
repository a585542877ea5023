"""``babelmoe diff``: how expert activation changes between two profiles of one architecture."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from babelmoe.analysis.config import DiffConfig
from babelmoe.analysis.stats.metrics import METRICS
from babelmoe.commands import common

EPILOG = """Examples:

  babelmoe diff runs/llama3-base runs/llama3-instruct --out runs/llama3-instruct/diff_vs_base

  babelmoe diff runs/gemma3 runs/gemma3-flores --out runs/corpus-diff --top-k 50

Writes tables (CSV + JSON), summary.json, figures/, report.html and report_section.json into
OUT; with OUT inside a run folder, `babelmoe report` of that run includes the diff. Expert ids
correspond only when both profiles used the same partition (profile B with A's partition).
"""


def diff(
    run_a: Annotated[Path, typer.Argument(help="Run folder A (e.g. the base model).")],
    run_b: Annotated[Path, typer.Argument(help="Run folder B (e.g. the instruction-tuned one).")],
    out: Annotated[Path, typer.Option(help="Output folder for the diff.")],
    shared_threshold: Annotated[
        float, typer.Option(help="Shared: frequency >= this in every language.")
    ] = common.config_default(DiffConfig, "shared_threshold"),
    top_k: Annotated[
        int, typer.Option(help="Largest changes listed per layer.")
    ] = common.config_default(DiffConfig, "top_k"),
    z_threshold: Annotated[
        float, typer.Option(help="Changed: |delta| > this x its bootstrap standard error.")
    ] = common.config_default(DiffConfig, "z_threshold"),
    metric: Annotated[
        str, typer.Option(help=f"Language distance: {', '.join(METRICS)}.")
    ] = common.config_default(DiffConfig, "primary_metric"),
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap resamples (0: none).")
    ] = common.config_default(DiffConfig, "statistics.n_bootstrap"),
    seed: Annotated[
        int, typer.Option(help="Seed of the bootstrap and permutations.")
    ] = common.config_default(DiffConfig, "statistics.seed"),
    figures: Annotated[bool, typer.Option("--figures/--no-figures", help="Write figures.")] = True,
) -> None:
    """Per-layer change of expert frequencies from A to B, experts gained and lost."""
    from babelmoe.analysis.config import DiffConfig, StatisticsConfig
    from babelmoe.stages.diff import run_diff

    config = DiffConfig(
        shared_threshold=shared_threshold,
        top_k=top_k,
        z_threshold=z_threshold,
        primary_metric=metric,
        statistics=StatisticsConfig(n_bootstrap=bootstrap, seed=seed),
    )
    summary = run_diff(config, out, run_a=run_a, run_b=run_b, figures=figures)
    for finding in summary["findings"]:
        typer.echo(f"- {finding['text']}")
    typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add ``diff`` to the program."""
    app.command("diff", epilog=EPILOG)(diff)
