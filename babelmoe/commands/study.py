"""``babelmoe study``: the 50+ language study of family against script (69 UDHR languages)."""

from __future__ import annotations

from pathlib import Path

import typer

from babelmoe.commands import common
from babelmoe.models.spec import ModelSpec
from babelmoe.stages.config import StudyConfig

EPILOG = """Examples:

  babelmoe study --out runs/study50

  babelmoe languages --min-tokens 1500          # what the study chose from

69 UDHR versions, 27 families, 27 scripts; the rule that chose them
and the reason for each contrast: babelmoe/corpus/study.py.

Writes RUN/report.html (section "Family against script") and
RUN/family_vs_script/ (tables, summary.json, figures). Re-running the
same command after an interruption resumes where it stopped.
"""


@common.model_options()
def study(
    out: Path = typer.Option(
        ..., "--out", "-o", help="Run folder (created; an interrupted run resumes)."
    ),
    budget: int = common.option(StudyConfig, "budget", "--budget", help="Tokens per language."),
    experts: int = common.option(
        StudyConfig, "n_experts", "--experts", "-e", help="Experts per layer."
    ),
    seed: int = common.option(StudyConfig, "seed", "--seed", help="k-means and bootstrap seed."),
    bootstrap: int = common.option(
        StudyConfig, "n_bootstrap", "--bootstrap", help="Bootstrap resamples of the intervals."
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="At most this many sequences per forward pass."
    ),
    force: bool = common.FORCE,
    *,
    spec: ModelSpec,
) -> None:
    """Profile the 69 study languages and test whether activation follows family or script."""
    from babelmoe.stages.study import run_study

    config = StudyConfig(
        budget=budget, n_experts=experts, seed=seed, n_bootstrap=bootstrap, batch_size=batch_size
    )
    report = run_study(spec, config, out, force=force)
    typer.echo(f"report written to {report}")


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(study)
