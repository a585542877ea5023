"""The main job: every stage on one run folder, each skipped when its artifact already exists.

split (main seed, then the extra seeds in ``RUN/seeds/seed<N>/``) -> profile (each) -> analyse
(with the seed study) -> sweep (pruning vs random, held-out perplexity) -> report. Because each
stage keeps an identical existing artifact, re-running the same command after an interruption
continues with the first unfinished stage.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from babelmoe import artifacts
from babelmoe.errors import BabelmoeError
from babelmoe.experts.partition import SplitConfig
from babelmoe.models.loading import ModelSpec, load_model
from babelmoe.stages.profile import ProfileConfig

logger = logging.getLogger(__name__)

TIMINGS_FILE = "run_timings.json"  # wall seconds of each stage of the last run_pipeline call


@dataclass
class PipelineConfig:
    """What the main job runs.

    Attributes:
        split: the expert split (its ``seed`` is the main run's seed).
        profile: the profiling run (languages, corpus, budget ...).
        extra_seeds: further k-means seeds profiled for the stability study (empty: none).
        sweep: run the pruning sweep (frequency-guided vs random) and put it in the report.
        sweep_ratios: pruning ratios of the sweep.
        sweep_methods: frequency-guided (and norm-baseline) methods compared with random.
        sweep_documents: held-out documents per language the sweep evaluates (None: all).
        specificity: also prune for each language and evaluate on every other (9 x 9 more
            evaluations: off by default in the main job, on in ``babelmoe sweep``).
    """

    split: SplitConfig = field(default_factory=SplitConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    extra_seeds: tuple[int, ...] = (1, 2)
    sweep: bool = True
    sweep_ratios: tuple[float, ...] = (0.1, 0.25, 0.4)
    sweep_methods: tuple[str, ...] = ("sort", "norm")
    sweep_documents: int | None = 3
    specificity: bool = False

    def __post_init__(self) -> None:
        if self.split.seed in self.extra_seeds:
            raise BabelmoeError(
                f"--seed {self.split.seed} is also among the extra seeds {list(self.extra_seeds)}",
                "give distinct seeds",
            )


def seed_dir(run_dir: Path, seed: int) -> Path:
    """Run folder of an extra k-means seed."""
    return run_dir / "seeds" / f"seed{seed}"


def run_pipeline(
    spec: ModelSpec, config: PipelineConfig, run_dir: Path, force: bool = False
) -> Path:
    """Run every stage into ``run_dir``; returns the report's path."""
    from babelmoe.analysis.config import AnalysisConfig
    from babelmoe.stages.analyse import run_analysis
    from babelmoe.stages.profile import run_profile
    from babelmoe.stages.report import build_report
    from babelmoe.stages.split import run_split

    timings: dict[str, float] = {}

    def stage(name: str, fn, *args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        timings[name] = time.perf_counter() - start
        logger.info("stage %s done in %.1fs", name, timings[name])
        return result

    from babelmoe.corpus import load_corpus

    artifacts.ensure_unlocked(run_dir)  # a second writer: refused before the model loads
    load_corpus(config.profile.corpus, config.profile.languages)  # a bad corpus: likewise
    loaded = stage("load", load_model, spec)
    stage("split", run_split, spec, config.split, run_dir, force=force, loaded=loaded)
    stage("profile", run_profile, spec, config.profile, run_dir, force=force, loaded=loaded)
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
    if config.sweep:
        from babelmoe.stages.sweep import SweepConfig, run_sweep

        stage(
            "sweep",
            run_sweep,
            run_dir,
            SweepConfig(
                methods=config.sweep_methods,
                ratios=config.sweep_ratios,
                max_documents=config.sweep_documents,
                specificity=config.specificity,
            ),
            loaded,
            force=force,
        )
    report = stage("report", build_report, run_dir)
    logger.info("timings: %s", ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()))
    artifacts.atomic_write_json(run_dir / TIMINGS_FILE, {"stages_s": timings})
    return report
