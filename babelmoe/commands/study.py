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
RUN/family_vs_script/ (tables, summary.json, figures, claims*.json).
Re-running the same command after an interruption resumes where it
stopped.

Replication (default on): a second sample of 50 UDHR languages, disjoint
from the first by ISO 639-3 and chosen by a rule fixed before profiling
(select_replication in babelmoe/corpus/study.py; printed before
profiling), is run the same way into RUN/replication/ (a complete run
folder sharing the first sample's partition); RUN/replication.csv/.json
say which claims replicate.

  babelmoe study --out runs/study50 --replication-languages bul,kir,yrk,gld
  babelmoe study --out runs/study50 --no-replication
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
    replication: bool = typer.Option(
        common.config_default(StudyConfig, "replication"),
        "--replication/--no-replication",
        help="Also run the replication sample into RUN/replication and check every claim on it.",
    ),
    replication_languages: str | None = typer.Option(
        None,
        "--replication-languages",
        help="Your own replication sample (comma-separated UDHR codes; none may share an ISO "
        "639-3 language with the first sample). Default: the frozen 50 of the stated rule.",
    ),
    force: bool = common.FORCE,
    *,
    spec: ModelSpec,
) -> None:
    """Profile the 69 study languages and test whether activation follows family or script;
    then check every claim on a second, disjoint sample of languages."""
    from babelmoe.stages.study import check_disjoint, run_study

    extra = {}
    if replication_languages is not None:
        codes = tuple(c.strip() for c in replication_languages.split(",") if c.strip())
        extra["replication_languages"] = codes
    config = StudyConfig(
        budget=budget,
        n_experts=experts,
        seed=seed,
        n_bootstrap=bootstrap,
        batch_size=batch_size,
        replication=replication,
        **extra,
    )
    if replication:
        check_disjoint(config)  # refused before anything is printed or loaded
        typer.echo(config.replication_statement())
    report = run_study(config, out, model=spec, force=force)
    typer.echo(f"report written to {report}")
    if replication:
        typer.echo(f"replication verdicts written to {out / 'replication.csv'}")


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(study)
