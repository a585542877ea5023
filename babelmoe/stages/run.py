"""The main job: every stage on one run folder, each skipped when its artifact already exists.

split (main seed, then the extra seeds in ``RUN/seeds/seed<N>/``) -> profile (each) ->
covariates -> analyse (with the seed study) -> sweep (pruning vs random, held-out perplexity) ->
report. Because each stage keeps an identical existing artifact, re-running the same command
after an interruption continues with the first unfinished stage. The sequence it shares with
``babelmoe study`` is ``stages.sequence.run_sequence``.

Progress: ``run_pipeline(config, run_dir, model=..., progress=callback)`` reports each stage's
start and end with an estimate of the time left (``stages.progress``); the command line shows it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from babelmoe import artifacts
from babelmoe.models.loading import LoadedModel, ModelSpec, as_loaded
from babelmoe.stages.config import PipelineConfig
from babelmoe.stages.progress import ProgressCallback, plan_stages
from babelmoe.stages.sequence import StageTimer, run_sequence

logger = logging.getLogger(__name__)

TIMINGS_FILE = "run_timings.json"  # wall seconds of each stage of the last run_pipeline call


def seed_dir(run_dir: Path, seed: int) -> Path:
    """Run folder of an extra k-means seed."""
    return run_dir / "seeds" / f"seed{seed}"


def run_pipeline(
    config: PipelineConfig,
    run_dir: Path,
    *,
    model: LoadedModel | ModelSpec,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> Path:
    """Run every stage into ``run_dir`` with ``model`` (a spec loads once, after the run folder
    and the corpus are checked); returns the report's path. ``progress`` is called when each
    stage starts and ends (``StageEvent``: i of N, time left)."""
    from babelmoe.corpus import load_corpus
    from babelmoe.prune.sweep import SweepConfig, plan_jobs
    from babelmoe.stages.profile import run_profile
    from babelmoe.stages.split import run_split

    languages = config.profile.languages
    sweep_config, evaluations = None, None
    if config.sweep:
        sweep_config = SweepConfig(
            methods=config.sweep_methods,
            ratios=config.sweep_ratios,
            max_documents=config.sweep_documents,
            specificity=config.specificity,
        )
        evaluations = sum(len(job.eval_langs) for job in plan_jobs(sweep_config, languages))
    plan = plan_stages(len(languages), config.extra_seeds, evaluations, config.sweep_documents)
    stage = StageTimer(plan, progress)

    artifacts.ensure_unlocked(run_dir)  # a second writer: refused before the model loads
    load_corpus(config.profile.corpus, config.profile.languages)  # a bad corpus: likewise
    loaded = stage("load", as_loaded, model)

    def extra_seeds() -> list[Path]:
        seed_runs = []
        for seed in config.extra_seeds:
            folder = seed_dir(run_dir, seed)
            split, profile = replace(config.split, seed=seed), config.profile
            stage(f"split seed {seed}", run_split, split, folder, model=loaded, force=force)
            stage(f"profile seed {seed}", run_profile, profile, folder, model=loaded, force=force)
            seed_runs.append(folder)
        return seed_runs

    def sweep() -> None:
        if sweep_config is not None:
            from babelmoe.stages.sweep import run_sweep

            stage("sweep", run_sweep, sweep_config, run_dir, model=loaded, force=force)

    report = run_sequence(
        stage,
        config,
        run_dir,
        model=loaded,
        force=force,
        before_analyse=extra_seeds,
        before_report=sweep,
    )
    artifacts.atomic_write_json(run_dir / TIMINGS_FILE, {"stages_s": stage.timings})
    return report
