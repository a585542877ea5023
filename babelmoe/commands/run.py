"""``babelmoe run``: the whole pipeline (split, profile, seeds, analyse, sweep, report)."""

from __future__ import annotations

from pathlib import Path

import typer

from babelmoe.commands import common
from babelmoe.commands.profile import split_list

EPILOG = """Examples (the first is the README's main command):

  babelmoe run --out runs/demo

  babelmoe run --out runs/llama2 --model meta-llama/Llama-2-7b-hf --device cuda --budget 1000000
"""


def run(
    out: Path = typer.Option(
        ..., "--out", "-o", help="Run folder (created; an interrupted run resumes)."
    ),
    languages: str = typer.Option(
        "en,fr,es,pt,zh,ar,hi,bn,ur", "--languages", "-l", help="Comma-separated codes."
    ),
    corpus: str = typer.Option(
        "udhr", "--corpus", help="udhr, a folder of <lang>.txt/.jsonl, or hf:<dataset>."
    ),
    budget: int = typer.Option(50_000, "--budget", help="Maximum profiled tokens per language."),
    experts: int = typer.Option(256, "--experts", "-e", help="Experts per layer."),
    seed: int = typer.Option(0, "--seed", help="k-means seed of the main run."),
    extra_seeds: str = typer.Option(
        "1,2", "--extra-seeds", help="More k-means seeds for the stability study ('' for none)."
    ),
    sweep: bool = typer.Option(True, "--sweep/--no-sweep", help="Run the pruning sweep."),
    specificity: bool = typer.Option(
        False, "--specificity/--no-specificity", help="Sweep: prune for A, evaluate on B too."
    ),
    sweep_documents: int = typer.Option(
        3, "--sweep-documents", help="Held-out documents per language in the sweep (0: all)."
    ),
    batch_size: int = typer.Option(8, "--batch-size", help="Sequences per forward pass."),
    model: str = common.MODEL,
    dtype: str = common.DTYPE,
    device: str = common.DEVICE,
    device_map: str | None = common.DEVICE_MAP,
    architectures: Path | None = common.ARCHITECTURES,
    force: bool = common.FORCE,
) -> None:
    """Run every stage on one model and write RUN/report.html."""
    from babelmoe.errors import BabelmoeError
    from babelmoe.experts.partition import SplitConfig
    from babelmoe.stages.profile import ProfileConfig
    from babelmoe.stages.run import PipelineConfig, run_pipeline

    try:
        seeds = tuple(int(s) for s in split_list(extra_seeds))
    except ValueError:
        raise BabelmoeError(
            f"--extra-seeds must be integers, got {extra_seeds!r}", "pass e.g. 1,2"
        ) from None
    config = PipelineConfig(
        split=SplitConfig(n_experts=experts, seed=seed),
        profile=ProfileConfig(
            languages=split_list(languages),
            corpus=corpus,
            token_budget=budget,
            batch_size=batch_size,
        ),
        extra_seeds=seeds,
        sweep=sweep,
        specificity=specificity,
        sweep_documents=sweep_documents or None,
    )
    spec = common.model_spec(model, dtype, device, device_map, architectures)
    report = run_pipeline(spec, config, out, force=force)
    typer.echo(f"report written to {report}")


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(run)
