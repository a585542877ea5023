"""``babelmoe study``: the 50+ language study of family against script, as one resumable job.

The languages are :data:`babelmoe.corpus.study.STUDY50_LANGUAGES` (69 UDHR versions, 27
Glottolog families, 27 scripts, chosen by the rule in :mod:`babelmoe.corpus.study`), each
profiled on the same number of tokens (:data:`~babelmoe.corpus.study.STUDY50_BUDGET`). Stages:
split (one k-means seed) -> profile -> analyse (only the primary metric, ``n_bootstrap``
resamples; it writes family against script and the shared-expert null model into
``RUN/family_vs_script/``) -> report. No pruning sweep
and no extra seeds: they answer other questions and would multiply the cost by the number of
languages. Every stage keeps an identical existing artifact, so re-running the same command after
an interruption continues where it stopped (the profile resumes from its last checkpoint).

Cost: about 100k profiled tokens; on 2 CPU cores the profile dominates.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from babelmoe import artifacts
from babelmoe.models.loading import ModelSpec, load_model
from babelmoe.stages.config import StudyConfig

logger = logging.getLogger(__name__)


def run_study(spec: ModelSpec, cfg: StudyConfig, run_dir: Path, force: bool = False) -> Path:
    """Run the study into ``run_dir``; returns the report's path."""
    from babelmoe.stages.analyse import run_analysis
    from babelmoe.stages.profile import run_profile
    from babelmoe.stages.report import build_report
    from babelmoe.stages.split import run_split

    run_dir = Path(run_dir)
    timings: dict[str, float] = {}

    def stage(name: str, fn, *args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        timings[name] = time.perf_counter() - start
        logger.info("study: %s done in %.1fs", name, timings[name])
        return result

    logger.info(
        "study: %d languages, %d tokens each, into %s", len(cfg.languages), cfg.budget, run_dir
    )
    artifacts.ensure_unlocked(run_dir)  # a second writer: refused before the model loads
    loaded = stage("load", load_model, spec)
    stage("split", run_split, spec, cfg.split, run_dir, force=force, loaded=loaded)
    stage("profile", run_profile, spec, cfg.profile, run_dir, force=force, loaded=loaded)
    stage("analyse", run_analysis, run_dir, cfg.analysis)
    report = stage("report", build_report, run_dir)
    logger.info("study timings: %s", ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()))
    return report
