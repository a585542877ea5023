"""``babelmoe sweep``: pruning methods x ratios x languages against random, in one table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from babelmoe.commands import common
from babelmoe.commands.prune import split_list
from babelmoe.errors import BabelmoeError

EPILOG = """Examples (after babelmoe split and babelmoe profile into runs/demo):

  babelmoe sweep runs/demo

  babelmoe sweep runs/demo --methods sort,adaptive --random-seeds 0,1,2,3,4 --udhr-cont

Writes RUN/sweep/: sweep.csv, curves.csv, sweep.json, figures (PNG + SVG) and
report_section.json; an interrupted sweep resumes where it stopped.
"""


def _numbers(value: str, kind: type) -> tuple:
    try:
        return tuple(kind(v) for v in split_list(value))
    except ValueError:
        raise BabelmoeError(f"not a list of numbers: {value!r}", "pass e.g. 0.1,0.25,0.4") from None


def sweep(
    run_dir: Annotated[Path, typer.Argument(help="Run folder with partition.* and profile.*.")],
    methods: Annotated[
        str, typer.Option(help="Comma-separated: sort, sort-per-layer, adaptive, norm.")
    ] = "sort,sort-per-layer,norm",
    ratios: Annotated[str, typer.Option(help="Comma-separated shares of experts removed.")] = (
        "0.1,0.25,0.4"
    ),
    languages: Annotated[
        str | None,
        typer.Option("--languages", "-l", help="Target languages (default: every profiled one)."),
    ] = None,
    random_seeds: Annotated[str, typer.Option(help="Seeds of the random baseline.")] = "0,1,2",
    seed: Annotated[int, typer.Option(help="Tie-breaking seed of the other methods.")] = 0,
    specificity: Annotated[
        bool, typer.Option(help="Run the prune-for-A, evaluate-on-every-B matrix.")
    ] = True,
    specificity_method: Annotated[
        str | None, typer.Option(help="Method of the matrix (default: sort, else the first).")
    ] = None,
    specificity_ratio: Annotated[
        float | None, typer.Option(help="Ratio of the matrix (default: the middle ratio).")
    ] = None,
    udhr_cont: Annotated[bool, typer.Option(help="Also score UDHR-Cont accuracy.")] = False,
    max_length: Annotated[int, typer.Option(help="Tokens per perplexity window.")] = 1024,
    batch_size: Annotated[int, typer.Option(help="Sequences per forward pass.")] = 4,
    max_documents: Annotated[
        int | None, typer.Option(help="At most this many held-out documents per language.")
    ] = None,
    model: str = common.MODEL,
    dtype: str = common.DTYPE,
    device: str = common.DEVICE,
    architectures: Path | None = common.ARCHITECTURES,
    force: Annotated[
        bool, typer.Option(help="Discard the rows of an earlier, different sweep; start over.")
    ] = False,
) -> None:
    """Compare frequency-guided pruning with random pruning on held-out perplexity."""
    from babelmoe.models.loading import load_model
    from babelmoe.stages.sweep import SweepConfig, run_sweep

    config = SweepConfig(
        methods=tuple(split_list(methods)),
        ratios=_numbers(ratios, float),
        languages=tuple(split_list(languages)) or None,
        random_seeds=_numbers(random_seeds, int),
        seed=seed,
        specificity=specificity,
        specificity_method=specificity_method,
        specificity_ratio=specificity_ratio,
        udhr_cont=udhr_cont,
        max_length=max_length,
        batch_size=batch_size,
        max_documents=max_documents,
    )
    spec = common.model_spec(model, dtype, device, None, architectures)
    path = run_sweep(run_dir, config, load_model(spec), force=force)
    typer.echo(f"sweep written to {path}")


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(sweep)
