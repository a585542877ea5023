"""The main job: every stage on one run folder, each skipped when its artifact already exists.

split (main seed, then the extra seeds in ``RUN/seeds/seed<N>/``) -> profile (each) -> analyse
(with the seed study) -> sweep (pruning vs random, held-out perplexity) -> report. Because each
stage keeps an identical existing artifact, re-running the same command after an interruption
continues with the first unfinished stage.

Progress: ``run_pipeline(..., progress=callback)`` reports each stage's start and end with an
estimate of the time left (``stages.progress``); the command line shows it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

from babelmoe import artifacts
from babelmoe.models.loading import ModelSpec, load_model
from babelmoe.stages.config import PipelineConfig
from babelmoe.stages.progress import ProgressCallback, StageEvent, plan_stages, seconds_left

logger = logging.getLogger(__name__)

TIMINGS_FILE = "run_timings.json"  # wall seconds of each stage of the last run_pipeline call


def seed_dir(run_dir: Path, seed: int) -> Path:
    """Run folder of an extra k-means seed."""
    return run_dir / "seeds" / f"seed{seed}"


def run_pipeline(
    spec: ModelSpec,
    config: PipelineConfig,
    run_dir: Path,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> Path:
    """Run every stage into ``run_dir``; returns the report's path. ``progress`` is called when
    each stage starts and ends (``StageEvent``: i of N, time left)."""
    from babelmoe.analysis.config import AnalysisConfig
    from babelmoe.prune.sweep import SweepConfig, plan_jobs
    from babelmoe.stages.analyse import run_analysis
    from babelmoe.stages.covariates import run_covariates
    from babelmoe.stages.profile import run_profile
    from babelmoe.stages.report import build_report
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
    timings: dict[str, float] = {}
    began = time.perf_counter()

    def stage(name: str, fn, *args, **kwargs):
        index = len(timings)
        assert plan[index].name == name, (plan[index].name, name)
        took = list(timings.values())
        if progress is not None:
            left = seconds_left(plan, took)
            elapsed = time.perf_counter() - began
            progress(StageEvent(index + 1, len(plan), plan[index], None, elapsed, left))
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        timings[name] = time.perf_counter() - start
        logger.info("stage %s done in %.1fs", name, timings[name])
        if progress is not None:
            left = seconds_left(plan, [*took, timings[name]])
            elapsed = time.perf_counter() - began
            event = StageEvent(index + 1, len(plan), plan[index], timings[name], elapsed, left)
            progress(event)
        return result

    from babelmoe.corpus import load_corpus

    artifacts.ensure_unlocked(run_dir)  # a second writer: refused before the model loads
    load_corpus(config.profile.corpus, config.profile.languages)  # a bad corpus: likewise
    loaded = stage("load", load_model, spec)
    stage("split", run_split, spec, config.split, run_dir, force=force, loaded=loaded)
    stage("profile", run_profile, spec, config.profile, run_dir, force=force, loaded=loaded)
    stage("covariates", run_covariates, run_dir, loaded, force=force)
    seed_runs = []
    for seed in config.extra_seeds:
        folder = seed_dir(run_dir, seed)
        stage(
            f"split seed {seed}",
            run_split,
            spec,
            replace(config.split, seed=seed),
            folder,
            force=force,
            loaded=loaded,
        )
        stage(
            f"profile seed {seed}",
            run_profile,
            spec,
            config.profile,
            folder,
            force=force,
            loaded=loaded,
        )
        seed_runs.append(folder)
    stage("analyse", run_analysis, run_dir, AnalysisConfig(), seed_runs=seed_runs)
    if sweep_config is not None:
        from babelmoe.stages.sweep import run_sweep

        stage("sweep", run_sweep, run_dir, sweep_config, loaded, force=force)
    report = stage("report", build_report, run_dir)
    logger.info("timings: %s", ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()))
    artifacts.atomic_write_json(run_dir / TIMINGS_FILE, {"stages_s": timings})
    return report
