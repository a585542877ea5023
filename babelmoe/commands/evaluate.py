"""``babelmoe evaluate``: held-out perplexity per language, and optional multilingual tasks."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from babelmoe.commands import common
from babelmoe.models.spec import ModelSpec
from babelmoe.stages.config import EvaluateConfig

EPILOG = """Examples:

  babelmoe evaluate default --run runs/demo

  babelmoe evaluate runs/demo/pruned/sort-en-r0.25-s0 --run runs/demo --udhr-cont

  babelmoe evaluate ./llama2 --run runs/llama --xcsqa data/X-CSQA --mgsm data/mgsm --limit 100

  babelmoe evaluate runs/demo/pruned/sort-en-r0.25-s0 --run runs/demo --tasks my_task.yaml

  babelmoe evaluate ./llama2 --run runs/llama --tasks xcopa_it,mgsm_direct_fr --num-fewshot 0

Writes <task>.<lang>.json + <task>.<lang>.items.jsonl and results.json into --out
(default RUN/eval/<model folder name>). --tasks, --xcsqa and --mgsm run through
lm-evaluation-harness (pip install 'babelmoe\\[eval]'): its own files go to OUT/lm_eval, the task
configs babelmoe writes to OUT/harness_tasks (re-run them with
lm_eval --model hf --model_args pretrained=MODEL_DIR --include_path OUT/harness_tasks --tasks NAME).
"""


@common.model_options(model=False)
def evaluate(
    source: Annotated[
        str,
        typer.Argument(
            metavar="MODEL_OR_PRUNED_DIR",
            help="A folder from babelmoe prune, a model folder, a hub id, a .gguf or 'default'.",
        ),
    ],
    run: Annotated[Path, typer.Option(help="Run folder whose profile says what is held out.")],
    languages: Annotated[
        str | None,
        typer.Option("--languages", "-l", help="Comma-separated (default: every profiled one)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder (default RUN/eval/<model folder name>)."),
    ] = None,
    max_length: Annotated[
        int, typer.Option(help="Tokens per perplexity window.")
    ] = common.config_default(EvaluateConfig, "max_length"),
    batch_size: Annotated[
        int, typer.Option(help="Sequences per forward pass.")
    ] = common.config_default(EvaluateConfig, "batch_size"),
    max_documents: Annotated[
        int | None, typer.Option(help="At most this many held-out documents per language.")
    ] = None,
    udhr_cont: Annotated[
        bool, typer.Option(help="Also run UDHR-Cont (the project's own task) on held-out text.")
    ] = common.config_default(EvaluateConfig, "udhr_cont"),
    xcsqa: Annotated[
        Path | None, typer.Option(help="X-CSQA folder ({lang}/{split}.jsonl) or file.")
    ] = None,
    xcsqa_split: Annotated[
        str, typer.Option(help="X-CSQA split (test has no answers).")
    ] = common.config_default(EvaluateConfig, "xcsqa_split"),
    mgsm: Annotated[Path | None, typer.Option(help="Folder of mgsm_{lang}.tsv files.")] = None,
    mgsm_mode: Annotated[str, typer.Option(help="cot or direct.")] = common.config_default(
        EvaluateConfig, "mgsm_mode"
    ),
    mgsm_shots: Annotated[
        int, typer.Option(help="Exemplars per MGSM prompt.")
    ] = common.config_default(EvaluateConfig, "mgsm_shots"),
    mgsm_exemplars: Annotated[
        Path | None, typer.Option(help="JSON copy of the published MGSM_EXEMPLARS.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="At most this many items per task and language.")
    ] = None,
    tasks: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated lm-eval task names or task YAML files (needs the eval extra)."
        ),
    ] = None,
    num_fewshot: Annotated[
        int | None, typer.Option(help="Few-shot examples for --tasks (default: each task's).")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            "--overwrite",
            help="Replace earlier results in --out (--overwrite: old name).",
        ),
    ] = False,
    *,
    spec: ModelSpec,
) -> None:
    """Evaluate a dense or pruned model on the run's held-out text (never the profiled text)."""
    from babelmoe.stages.evaluate import EvaluateConfig, run_evaluate

    config = EvaluateConfig(
        languages=tuple(common.split_list(languages)) or None,
        max_length=max_length,
        batch_size=batch_size,
        max_documents=max_documents,
        udhr_cont=udhr_cont,
        xcsqa=xcsqa,
        xcsqa_split=xcsqa_split,
        mgsm=mgsm,
        mgsm_mode=mgsm_mode,  # type: ignore[arg-type]
        mgsm_shots=mgsm_shots,
        mgsm_exemplars=mgsm_exemplars,
        limit=limit,
        tasks=common.task_list(tasks),
        num_fewshot=num_fewshot,
    )
    spec = dataclasses.replace(spec, source=source)
    path = run_evaluate(config, run, model=spec, out=out, force=force)
    typer.echo(f"results written to {path}")


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(evaluate)
