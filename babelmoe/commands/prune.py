"""``babelmoe prune``: remove the experts the target languages rarely use; save a smaller model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from babelmoe.commands import common
from babelmoe.errors import check_seed
from babelmoe.models.spec import ModelSpec
from babelmoe.prune.criteria import PruneConfig, methods_help

EPILOG = """Examples (after babelmoe split and babelmoe profile into runs/demo):

  babelmoe prune runs/demo --method sort --ratio 0.25 --languages en

  babelmoe prune runs/demo --method threshold --tau 0.02 --languages en,fr --aggregate max

  babelmoe prune runs/demo --method random --ratio 0.25 --seed 1 --out pruned/random-1

A uniform-width result loads with AutoModelForCausalLM.from_pretrained(OUT); any result
loads with babelmoe.prune.load_pruned(OUT). OUT/babelmoe_pruning.json says what was removed.
"""


@common.model_options(device_map=False)
def prune(
    run_dir: Annotated[Path, typer.Argument(help="Run folder with partition.* and profile.*.")],
    method: Annotated[
        str,
        typer.Option(help=f"Selection rule. {methods_help()}."),
    ] = common.config_default(PruneConfig, "method"),
    ratio: Annotated[
        float | None, typer.Option("--ratio", "-r", help="Share of experts removed, in [0, 1).")
    ] = None,
    tau: Annotated[
        float | None, typer.Option(help="threshold only: remove experts with frequency < tau.")
    ] = None,
    languages: Annotated[
        str | None,
        typer.Option("--languages", "-l", help="Target language(s), comma-separated, as profiled."),
    ] = None,
    aggregate: Annotated[
        str, typer.Option(help="Several languages: mean or max frequency per expert.")
    ] = common.config_default(PruneConfig, "aggregate"),
    seed: Annotated[
        int, typer.Option(help="Seed of random and of the tie-breaking order.")
    ] = common.config_default(PruneConfig, "seed"),
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Output folder (default RUN/pruned/<method>-<langs>-...)."
        ),
    ] = None,
    force: bool = common.FORCE,
    *,
    spec: ModelSpec,
) -> None:
    """Remove experts by activation frequency (or a baseline); save a physically smaller model."""
    from babelmoe.stages.prune import run_prune

    config = PruneConfig(
        method=method,  # type: ignore[arg-type]
        ratio=ratio,
        tau=tau,
        languages=tuple(common.split_list(languages)),
        aggregate=aggregate,  # type: ignore[arg-type]
        seed=check_seed(seed),
    )
    path = run_prune(config, run_dir, model=spec, out=out, force=force)
    typer.echo(f"pruned model written to {path}")


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(prune)
