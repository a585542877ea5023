"""The sequence that ``babelmoe run`` and ``babelmoe study`` share: (the caller loads the model)
-> split -> profile -> covariates -> (what the job adds) -> analyse -> (what the job adds) ->
report, each stage timed by one :class:`StageTimer`.

Every stage keeps an identical existing artifact, so the same call after an interruption
continues with the first unfinished stage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babelmoe.stages.progress import ProgressCallback, Stage, StageEvent, seconds_left

if TYPE_CHECKING:
    from babelmoe.models.loading import LoadedModel
    from babelmoe.stages.config import PipelineConfig, StudyConfig

logger = logging.getLogger(__name__)


class StageTimer:
    """Runs named stages, logs how long each took and keeps the timings.

    With a ``plan`` (``stages.progress.plan_stages``), the stages must come in its order and
    ``progress`` hears each start and end with the time left. ``done``: the log line's format
    for a finished stage (``%s``: its name); ``summary``: the label of the final timings line.
    """

    def __init__(
        self,
        plan: Sequence[Stage] | None = None,
        progress: ProgressCallback | None = None,
        done: str = "stage %s",
        summary: str = "timings",
    ) -> None:
        self.plan, self.progress, self.done, self.summary = plan, progress, done, summary
        self.timings: dict[str, float] = {}
        self.began = time.perf_counter()

    def __call__(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` as the stage ``name``; returns its result."""
        index = len(self.timings)
        if self.plan is not None:
            assert self.plan[index].name == name, (self.plan[index].name, name)
        took = list(self.timings.values())
        self._report(index, None, took)
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        self.timings[name] = time.perf_counter() - start
        logger.info(self.done + " done in %.1fs", name, self.timings[name])
        self._report(index, self.timings[name], [*took, self.timings[name]])
        return result

    def _report(self, index: int, seconds: float | None, took: list[float]) -> None:
        if self.progress is None or self.plan is None:
            return
        left = seconds_left(self.plan, took)
        elapsed = time.perf_counter() - self.began
        self.progress(
            StageEvent(index + 1, len(self.plan), self.plan[index], seconds, elapsed, left)
        )

    def log_summary(self) -> None:
        """One line with every stage's seconds."""
        logger.info(
            "%s: %s", self.summary, ", ".join(f"{k} {v:.0f}s" for k, v in self.timings.items())
        )


def run_sequence(
    stage: StageTimer,
    config: PipelineConfig | StudyConfig,
    run_dir: Path,
    *,
    model: LoadedModel,
    force: bool = False,
    before_analyse: Callable[[], Sequence[Path]] | None = None,
    before_report: Callable[[], None] | None = None,
) -> Path:
    """split -> profile -> covariates -> ``before_analyse()`` (returns the seed runs to compare)
    -> analyse -> ``before_report()`` -> report, into ``run_dir`` with the loaded ``model``
    and ``config``'s split, profile and analysis settings (none: ``AnalysisConfig()``); returns
    the report's path."""
    from babelmoe.stages.analyse import run_analysis
    from babelmoe.stages.covariates import run_covariates
    from babelmoe.stages.profile import run_profile
    from babelmoe.stages.report import build_report
    from babelmoe.stages.split import run_split

    stage("split", run_split, config.split, run_dir, model=model, force=force)
    stage("profile", run_profile, config.profile, run_dir, model=model, force=force)
    stage("covariates", run_covariates, None, run_dir, model=model, force=force)
    seed_runs = list(before_analyse()) if before_analyse is not None else []
    analysis = getattr(config, "analysis", None)  # the main job analyses with the defaults
    stage("analyse", run_analysis, analysis, run_dir, seed_runs=seed_runs)
    if before_report is not None:
        before_report()
    report = stage("report", build_report, run_dir)
    stage.log_summary()
    return report
