"""``babelmoe split``: cluster every FFN into balanced experts."""

from __future__ import annotations

from pathlib import Path

import typer

from babelmoe.commands import common

EPILOG = """Examples:

  babelmoe split --out runs/demo --experts 256

  babelmoe split --model meta-llama/Llama-2-7b-hf --device cuda --out runs/llama2
"""


def split(
    out: Path = typer.Option(..., "--out", "-o", help="Run folder to write partition.* into."),
    experts: int = typer.Option(256, "--experts", "-e", help="Experts per layer (E)."),
    source: str = typer.Option("up", "--source", help="Rows to cluster: up, gate or both."),
    seed: int = typer.Option(0, "--seed", help="k-means seed."),
    max_iter: int = typer.Option(50, "--max-iter", help="Maximum k-means iterations per layer."),
    model: str = common.MODEL,
    dtype: str = common.DTYPE,
    device: str = common.DEVICE,
    device_map: str | None = common.DEVICE_MAP,
    architectures: Path | None = common.ARCHITECTURES,
    force: bool = common.FORCE,
) -> None:
    """Split every FFN into E equal-size experts by balanced k-means over its input projection."""
    from babelmoe.experts.partition import SplitConfig
    from babelmoe.stages.split import run_split

    config = SplitConfig(n_experts=experts, source=source, seed=seed, max_iter=max_iter)  # type: ignore[arg-type]
    spec = common.model_spec(model, dtype, device, device_map, architectures)
    path = run_split(spec, config, out, force=force)
    typer.echo(f"partition written to {path}")


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(split)
