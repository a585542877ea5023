"""``babelmoe profile``: per-language expert activation frequencies."""

from __future__ import annotations

from pathlib import Path

import typer

from babelmoe.commands import common
from babelmoe.models.spec import ModelSpec
from babelmoe.stages.config import ProfileConfig

EPILOG = """Examples (after babelmoe split --out runs/demo):

  babelmoe profile runs/demo --languages en,fr,es,pt,zh,ar,hi,bn,ur --budget 50000

  babelmoe profile runs/mine --corpus ./my_texts/ --languages de,nl --budget 1000000

  torchrun --standalone --nproc_per_node 2 -m babelmoe.cli profile runs/llama --model ./llama2
"""


# Options the main job (`babelmoe run`) shares, declared once.
LANGUAGES = common.option(
    ProfileConfig, "languages", "--languages", "-l", help="Comma-separated language codes."
)
CORPUS = common.option(
    ProfileConfig,
    "corpus",
    "--corpus",
    help="udhr, a folder of <lang>.txt/.jsonl, or hf:<dataset>[:<config>].",
)
BUDGET = common.option(
    ProfileConfig, "token_budget", "--budget", help="Maximum counted tokens per language."
)
BATCH_SIZE = common.option(
    ProfileConfig,
    "batch_size",
    "--batch-size",
    help="At most this many sequences per forward pass (default: as --batch-tokens allows).",
)
BATCH_TOKENS = common.option(
    ProfileConfig,
    "batch_tokens",
    "--batch-tokens",
    help="Positions per forward pass (rows x width); lower it if memory runs out.",
)


@common.model_options()
def profile(
    run_dir: Path = typer.Argument(
        ..., help="Run folder holding partition.* (from babelmoe split)."
    ),
    languages: str = LANGUAGES,
    corpus: str = CORPUS,
    budget: int = BUDGET,
    heldout: float = common.option(
        ProfileConfig,
        "heldout_frac",
        "--heldout",
        help="Share of documents kept out for evaluation.",
    ),
    max_length: int = common.option(
        ProfileConfig, "max_length", "--max-length", help="Tokens per sequence (BOS included)."
    ),
    batch_tokens: int = BATCH_TOKENS,
    batch_size: int | None = BATCH_SIZE,
    packing: bool = common.option(
        ProfileConfig,
        "packing",
        "--packing/--no-packing",
        help="Pack several documents into each row (each attends only to itself).",
    ),
    norm: str = common.option(
        ProfileConfig, "norm", "--norm", help="Expert score: l2, l1, mean or max."
    ),
    selection: str = common.option(
        ProfileConfig, "selection", "--selection", help="global (across layers) or per_layer."
    ),
    top_frac: float = common.option(
        ProfileConfig, "top_frac", "--top-frac", help="Fraction of experts each token selects."
    ),
    zscore: bool = common.option(
        ProfileConfig, "zscore", "--zscore/--no-zscore", help="Z-score per token and layer first."
    ),
    units: int = common.option(
        ProfileConfig, "n_units", "--units", help="Bootstrap units per language."
    ),
    checkpoint_minutes: float = common.option(
        ProfileConfig,
        "checkpoint_minutes",
        "--checkpoint-minutes",
        help="Minutes between resumable checkpoints.",
    ),
    checkpoint_every: int | None = common.option(
        ProfileConfig,
        "checkpoint_every",
        "--checkpoint-every",
        help="A checkpoint every this many batches instead of by time.",
    ),
    compile: bool = common.option(
        ProfileConfig,
        "compile",
        "--compile/--no-compile",
        help="On CUDA, torch.compile the layers and statistics.",
    ),
    force: bool = common.FORCE,
    *,
    spec: ModelSpec,
) -> None:
    """Count how often each expert is among a token's top experts, per language."""
    from babelmoe.stages.profile import run_profile

    config = ProfileConfig(
        languages=common.split_list(languages),
        corpus=corpus,
        token_budget=budget,
        heldout_frac=heldout,
        max_length=max_length,
        batch_tokens=batch_tokens,
        batch_size=batch_size,
        packing=packing,
        norm=norm,
        selection=selection,
        top_frac=top_frac,
        zscore=zscore,
        n_units=units,
        checkpoint_minutes=checkpoint_minutes,
        checkpoint_every=checkpoint_every,
        compile=compile,
    )
    with common.distributed():
        path = run_profile(config, run_dir, model=spec, force=force)
    typer.echo(f"profile written to {path}")


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(profile)
