"""``babelmoe run``: the whole pipeline (split, profile, seeds, analyse, sweep, report)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from babelmoe.commands import common
from babelmoe.commands import profile as profile_options
from babelmoe.errors import check_seed
from babelmoe.experts.config import SplitConfig
from babelmoe.models.spec import ModelSpec
from babelmoe.stages.config import PipelineConfig, ProfileConfig

if TYPE_CHECKING:
    from babelmoe.stages.progress import StageEvent

EPILOG = """Examples (the first is the README's main command):

  babelmoe run --out runs/demo

  babelmoe run --out runs/llama2 --model meta-llama/Llama-2-7b-hf --device cuda --budget 1000000
"""


@common.model_options()
def run(
    out: Path = typer.Option(
        ..., "--out", "-o", help="Run folder (created; an interrupted run resumes)."
    ),
    languages: str = profile_options.LANGUAGES,
    corpus: str = profile_options.CORPUS,
    budget: int = profile_options.BUDGET,
    experts: int = common.option(
        SplitConfig, "n_experts", "--experts", "-e", help="Experts per layer."
    ),
    seed: int = common.option(SplitConfig, "seed", "--seed", help="k-means seed of the main run."),
    extra_seeds: str = common.option(
        PipelineConfig,
        "extra_seeds",
        "--extra-seeds",
        help="More k-means seeds for the stability study ('' for none).",
    ),
    sweep: bool = common.option(
        PipelineConfig, "sweep", "--sweep/--no-sweep", help="Run the pruning sweep."
    ),
    specificity: bool = common.option(
        PipelineConfig,
        "specificity",
        "--specificity/--no-specificity",
        help="Sweep: prune for A, evaluate on B too.",
    ),
    sweep_documents: int = common.option(
        PipelineConfig,
        "sweep_documents",
        "--sweep-documents",
        help="Held-out documents per language in the sweep (0: all).",
    ),
    batch_size: int | None = profile_options.BATCH_SIZE,
    force: bool = common.FORCE,
    *,
    spec: ModelSpec,
) -> None:
    """Run every stage on one model and write RUN/report.html."""
    from babelmoe.stages.run import run_pipeline

    seeds = tuple(
        check_seed(s, "--extra-seeds") for s in common.numbers(extra_seeds, int, "--extra-seeds")
    )
    config = PipelineConfig(
        split=SplitConfig(n_experts=experts, seed=seed),
        profile=ProfileConfig(
            languages=common.split_list(languages),
            corpus=corpus,
            token_budget=budget,
            batch_size=batch_size,
        ),
        extra_seeds=seeds,
        sweep=sweep,
        specificity=specificity,
        sweep_documents=sweep_documents or None,
    )
    report = run_pipeline(config, out, model=spec, force=force, progress=show_stage)
    typer.echo(f"report written to {report}")


def show_stage(event: StageEvent) -> None:
    """One line on stderr as each stage starts (``[3/9] profile ... about 2:10 left``) and when
    the last one ends; each stage draws its own progress bar below it."""
    from babelmoe.stages.progress import clock

    if event.seconds is None:
        guess = " (first guess)" if event.index == 1 else ""
        left = f", about {clock(event.left)} left{guess}" if event.left is not None else ""
        where = f"[{event.index}/{event.total}] {event.stage.name}"
        line = f"{where} ({clock(event.elapsed)} elapsed{left})"
        typer.echo(line, err=True)
    elif event.index == event.total:
        typer.echo(f"[{event.total}/{event.total}] done in {clock(event.elapsed)}", err=True)


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(run)
