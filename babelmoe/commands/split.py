"""``babelmoe split``: cluster every FFN into balanced experts."""

from __future__ import annotations

from pathlib import Path

import typer

from babelmoe.commands import common
from babelmoe.experts.config import SplitConfig
from babelmoe.models.spec import ModelSpec

EPILOG = """Examples:

  babelmoe split --out runs/demo --experts 256

  babelmoe split --model meta-llama/Llama-2-7b-hf --device cuda --out runs/llama2
"""


@common.model_options()
def split(
    out: Path = typer.Option(..., "--out", "-o", help="Run folder to write partition.* into."),
    experts: int = common.option(
        SplitConfig, "n_experts", "--experts", "-e", help="Experts per layer (E)."
    ),
    source: str = common.option(
        SplitConfig, "source", "--source", help="Rows to cluster: up, gate or both."
    ),
    seed: int = common.option(SplitConfig, "seed", "--seed", help="k-means seed."),
    max_iter: int = common.option(
        SplitConfig, "max_iter", "--max-iter", help="Maximum k-means iterations per layer."
    ),
    force: bool = common.FORCE,
    *,
    spec: ModelSpec,
) -> None:
    """Split every FFN into E equal-size experts by balanced k-means over its input projection."""
    from babelmoe.stages.split import run_split

    config = SplitConfig(n_experts=experts, source=source, seed=seed, max_iter=max_iter)  # type: ignore[arg-type]
    path = run_split(config, out, model=spec, force=force)
    typer.echo(f"partition written to {path}")


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(split)
