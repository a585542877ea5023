"""``babelmoe steer``: silence and steer languages through their experts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from babelmoe.commands import common
from babelmoe.errors import check_seed
from babelmoe.models.spec import ModelSpec
from babelmoe.stages.config import SteerConfig

EPILOG = """Examples (after babelmoe split and babelmoe profile into runs/demo):

  babelmoe steer runs/demo

  babelmoe steer runs/demo -l en,fr,zh --rule lape --k 8 --factors 1,2,4,8 --silence-source

  babelmoe steer runs/smollm2 --model SmolLM2.gguf --chat --keep-language --no-silencing

Writes RUN/interventions/: selection.safetensors/.json (each language's experts and the random
sets), rows.jsonl (resumable), interventions.json (matrices, tests, steering shares with
bootstrap intervals), silencing.csv, steering.csv, continuations.jsonl, figures and
report_section.json (babelmoe report shows it).
"""


def _d(name: str):
    return common.config_default(SteerConfig, name)


@common.model_options(device_map=False)
def steer(
    run_dir: Annotated[Path, typer.Argument(help="Run folder with partition.* and profile.*.")],
    languages: Annotated[
        str | None,
        typer.Option("--languages", "-l", help="Languages (default: every profiled one)."),
    ] = None,
    contrast: Annotated[
        str,
        typer.Option(
            help="Which languages the selection compares each language with: profiled (all, "
            "also those not in -l) or steered (only -l: as a run profiled on those alone)."
        ),
    ] = _d("contrast"),
    rule: Annotated[str, typer.Option(help="Expert selection: excess or lape.")] = _d("rule"),
    k: Annotated[int, typer.Option(help="Experts per layer (or k x layers, global).")] = _d("k"),
    scope: Annotated[str, typer.Option(help="layer or global.")] = _d("scope"),
    random_seeds: Annotated[
        str, typer.Option(help="Random expert sets of the silencing null.")
    ] = _d("random_seeds"),
    shared_null: Annotated[
        bool,
        typer.Option(
            help="One random set per seed for all languages of equal counts (--no-shared-null: "
            "one per language, a null for the dominance statistic, more models)."
        ),
    ] = _d("shared_null"),
    steer_seeds: Annotated[str, typer.Option(help="Random expert sets of the steering null.")] = _d(
        "steer_seeds"
    ),
    factors: Annotated[str, typer.Option(help="Amplification factors (1 = unmodified).")] = _d(
        "factors"
    ),
    prompts: Annotated[
        int, typer.Option(help="Held-out documents per language used as prompts.")
    ] = _d("prompts"),
    neutral: Annotated[
        bool, typer.Option(help="Also continue the language-neutral prompts.")
    ] = True,
    silence_source: Annotated[
        bool, typer.Option(help="Also steer with the prompt language's experts off.")
    ] = _d("silence_source"),
    keep_language: Annotated[
        bool,
        typer.Option(
            help="Amplify the prompt language's own experts instead: does the answer stay in it?"
        ),
    ] = _d("keep_language"),
    chat: Annotated[
        bool, typer.Option(help="Prompts as a user turn of the chat template (instruct models).")
    ] = _d("chat"),
    silencing: Annotated[bool, typer.Option(help="Run the silencing matrix.")] = _d("silencing"),
    steering: Annotated[bool, typer.Option(help="Run the steering generation.")] = _d("steering"),
    max_documents: Annotated[
        int | None, typer.Option(help="Held-out documents per language for perplexity.")
    ] = _d("max_documents"),
    max_new_tokens: Annotated[int, typer.Option(help="Tokens generated per prompt.")] = _d(
        "max_new_tokens"
    ),
    batch_size: Annotated[
        int, typer.Option(help="Sequences per perplexity / fluency forward.")
    ] = _d("batch_size"),
    gen_batch_size: Annotated[int, typer.Option(help="Sequences per generate call.")] = _d(
        "gen_batch_size"
    ),
    sample: Annotated[bool, typer.Option(help="Sample (seeded) instead of greedy decoding.")] = _d(
        "sample"
    ),
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = _d("temperature"),
    seed: Annotated[int, typer.Option(help="Seed of sampling and permutations.")] = _d("seed"),
    force: Annotated[
        bool, typer.Option(help="Discard the rows of an earlier, different run; start over.")
    ] = False,
    *,
    spec: ModelSpec,
) -> None:
    """Silence each language's experts (perplexity of every language) and amplify them to
    steer generation (language of the continuations), against random experts."""
    from babelmoe.stages.steer import run_steer

    config = SteerConfig(
        languages=tuple(common.split_list(languages)) or None,
        contrast=contrast,
        rule=rule,
        k=k,
        scope=scope,
        random_seeds=tuple(
            check_seed(s, "--random-seeds")
            for s in common.numbers(random_seeds, int, "--random-seeds")
        ),
        shared_null=shared_null,
        steer_seeds=tuple(
            check_seed(s, "--steer-seeds")
            for s in common.numbers(steer_seeds, int, "--steer-seeds")
        ),
        factors=common.numbers(factors, float, "--factors"),
        prompts=prompts,
        neutral=SteerConfig.neutral if neutral else (),
        silence_source=silence_source,
        keep_language=keep_language,
        chat=chat,
        silencing=silencing,
        steering=steering,
        max_documents=max_documents,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        gen_batch_size=gen_batch_size,
        sample=sample,
        temperature=temperature,
        seed=check_seed(seed),
    )
    summary = run_steer(config, run_dir, model=spec, force=force)
    for line in summary["findings"]:
        typer.echo(line)
    typer.echo(f"interventions written to {Path(run_dir) / 'interventions'}")


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(steer)
