"""``babelmoe sweep``: pruning methods x ratios x languages against random, in one table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from babelmoe.commands import common
from babelmoe.errors import BabelmoeError, check_seed
from babelmoe.models.spec import ModelSpec
from babelmoe.prune.sweep import SweepConfig, swept_methods

EPILOG = """Examples (after babelmoe split and babelmoe profile into runs/demo):

  babelmoe sweep runs/demo

  babelmoe sweep runs/demo --methods sort,adaptive --random-seeds 0,1,2,3,4 --udhr-cont

Writes RUN/sweep/: sweep.csv, curves.csv, sweep.json, figures (PNG + SVG) and
report_section.json; an interrupted sweep resumes where it stopped.
"""


@common.model_options(device_map=False)
def sweep(
    run_dir: Annotated[Path, typer.Argument(help="Run folder with partition.* and profile.*.")],
    methods: Annotated[
        str, typer.Option(help=f"Comma-separated, any of: {', '.join(swept_methods())}.")
    ] = common.config_default(SweepConfig, "methods"),
    ratios: Annotated[
        str, typer.Option(help="Comma-separated shares of experts removed.")
    ] = common.config_default(SweepConfig, "ratios"),
    languages: Annotated[
        str | None,
        typer.Option("--languages", "-l", help="Target languages (default: every profiled one)."),
    ] = None,
    random_seeds: Annotated[
        str, typer.Option(help="Seeds of the random baseline.")
    ] = common.config_default(SweepConfig, "random_seeds"),
    seed: Annotated[
        int, typer.Option(help="Tie-breaking seed of the other methods.")
    ] = common.config_default(SweepConfig, "seed"),
    specificity: Annotated[
        bool, typer.Option(help="Run the prune-for-A, evaluate-on-every-B matrix.")
    ] = common.config_default(SweepConfig, "specificity"),
    specificity_method: Annotated[
        str | None, typer.Option(help="Method of the matrix (default: sort, else the first).")
    ] = None,
    specificity_ratio: Annotated[
        float | None, typer.Option(help="Ratio of the matrix (default: the middle ratio).")
    ] = None,
    udhr_cont: Annotated[
        bool, typer.Option(help="Also score UDHR-Cont accuracy.")
    ] = common.config_default(SweepConfig, "udhr_cont"),
    max_length: Annotated[
        int, typer.Option(help="Tokens per perplexity window.")
    ] = common.config_default(SweepConfig, "max_length"),
    batch_size: Annotated[
        int, typer.Option(help="Sequences per forward pass.")
    ] = common.config_default(SweepConfig, "batch_size"),
    max_documents: Annotated[
        int | None, typer.Option(help="At most this many held-out documents per language.")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Discard the rows of an earlier, different sweep; start over.")
    ] = False,
    tasks: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated lm-eval task names or YAML files, run on every pruned model "
            "(needs the eval extra)."
        ),
    ] = None,
    num_fewshot: Annotated[
        int | None, typer.Option(help="Few-shot examples for --tasks (default: each task's).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="At most this many items per --tasks task.")
    ] = None,
    *,
    spec: ModelSpec,
) -> None:
    """Compare frequency-guided pruning with random pruning on held-out perplexity."""
    from babelmoe.stages.sweep import SweepConfig, run_sweep

    config = SweepConfig(
        methods=tuple(common.split_list(methods)),
        ratios=common.numbers(ratios, float, "--ratios"),
        languages=tuple(common.split_list(languages)) or None,
        random_seeds=tuple(
            check_seed(s, "--random-seeds")
            for s in common.numbers(random_seeds, int, "--random-seeds")
        ),
        seed=check_seed(seed),
        specificity=specificity,
        specificity_method=specificity_method,
        specificity_ratio=specificity_ratio,
        udhr_cont=udhr_cont,
        max_length=max_length,
        batch_size=batch_size,
        max_documents=max_documents,
    )
    harness = None
    tasks_given = common.task_list(tasks)
    for flag, value in (("--limit", limit), ("--num-fewshot", num_fewshot)):
        if value is not None and not tasks_given:
            raise BabelmoeError(
                f"{flag} applies to --tasks, and no --tasks was given",
                f"add --tasks or drop {flag}",
            )
    if tasks_given:
        from babelmoe.evaluate.harness import HarnessConfig, require_lm_eval

        require_lm_eval()
        harness = HarnessConfig(
            tasks=tasks_given,
            limit=limit,
            num_fewshot=num_fewshot,
            batch_size=batch_size,
        )
        harness.task_files()  # a missing YAML: one line before the model loads
    path = run_sweep(config, run_dir, model=spec, force=force, harness=harness)
    typer.echo(f"sweep written to {path}")


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(sweep)
