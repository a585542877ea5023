"""``babelmoe profile``: per-language expert activation frequencies."""

from __future__ import annotations

from pathlib import Path

import typer

from babelmoe.commands import common

EPILOG = """Examples (after babelmoe split --out runs/demo):

  babelmoe profile runs/demo --languages en,fr,es,pt,zh,ar,hi,bn,ur --budget 50000

  babelmoe profile runs/mine --corpus ./my_texts/ --languages de,nl --budget 1000000

  torchrun --standalone --nproc_per_node 2 -m babelmoe.cli profile runs/llama --model ./llama2
"""


def split_list(value: str) -> list[str]:
    """'en, fr,es' -> ['en', 'fr', 'es']."""
    return [part.strip() for part in value.split(",") if part.strip()]


def profile(
    run_dir: Path = typer.Argument(
        ..., help="Run folder holding partition.* (from babelmoe split)."
    ),
    languages: str = typer.Option(
        ",".join(["en", "fr", "es", "pt", "zh", "ar", "hi", "bn", "ur"]),
        "--languages",
        "-l",
        help="Comma-separated language codes.",
    ),
    corpus: str = typer.Option(
        "udhr", "--corpus", help="udhr, a folder of <lang>.txt/.jsonl, or hf:<dataset>[:<config>]."
    ),
    budget: int = typer.Option(50_000, "--budget", help="Maximum counted tokens per language."),
    heldout: float = typer.Option(
        0.2, "--heldout", help="Share of documents kept out for evaluation."
    ),
    max_length: int = typer.Option(512, "--max-length", help="Tokens per sequence (BOS included)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Sequences per forward pass."),
    packing: bool = typer.Option(
        False, "--packing/--no-packing", help="Pack a language's documents into full rows."
    ),
    norm: str = typer.Option("l2", "--norm", help="Expert score: l2, l1, mean or max."),
    selection: str = typer.Option(
        "global", "--selection", help="global (across layers) or per_layer."
    ),
    top_frac: float = typer.Option(
        0.10, "--top-frac", help="Fraction of experts each token selects."
    ),
    zscore: bool = typer.Option(
        True, "--zscore/--no-zscore", help="Z-score per token and layer first."
    ),
    units: int = typer.Option(32, "--units", help="Bootstrap units per language."),
    checkpoint_every: int = typer.Option(
        50, "--checkpoint-every", help="Batches between checkpoints."
    ),
    compile: bool = typer.Option(
        True, "--compile/--no-compile", help="On CUDA, torch.compile the layers and statistics."
    ),
    model: str = common.MODEL,
    dtype: str = common.DTYPE,
    device: str = common.DEVICE,
    device_map: str | None = common.DEVICE_MAP,
    architectures: Path | None = common.ARCHITECTURES,
    force: bool = common.FORCE,
) -> None:
    """Count how often each expert is among a token's top experts, per language."""
    from babelmoe.stages.profile import ProfileConfig, run_profile

    config = ProfileConfig(
        languages=split_list(languages),
        corpus=corpus,
        token_budget=budget,
        heldout_frac=heldout,
        max_length=max_length,
        batch_size=batch_size,
        packing=packing,
        norm=norm,
        selection=selection,
        top_frac=top_frac,
        zscore=zscore,
        n_units=units,
        checkpoint_every=checkpoint_every,
        compile=compile,
    )
    spec = common.model_spec(model, dtype, device, device_map, architectures)
    with common.distributed():
        path = run_profile(spec, config, run_dir, force=force)
    typer.echo(f"profile written to {path}")


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(profile)
