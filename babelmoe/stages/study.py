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

Replication (on by default): a second, disjoint sample of languages
(:data:`~babelmoe.corpus.study.REPLICATION_LANGUAGES`, 50 UDHR versions chosen by
:func:`~babelmoe.corpus.study.select_replication`, a rule fixed before profiling; or the user's own,
refused when it shares an ISO 639-3 language with the first) is profiled and analysed the same way
into ``RUN/replication/``, a complete run folder of its own that shares the first sample's
partition (the split does not depend on languages: its artifact is copied, not re-clustered). Then
every claim of ``RUN/family_vs_script/claims*.json`` is checked on the second sample
(:mod:`babelmoe.analysis.replication`): ``RUN/replication.csv/.json`` and a report section.
Folders profiled separately (a run of the first sample, and one of the second with the same split
seed) can be assembled into this layout (``mv S2 S1/replication``) and re-analysed by running the
same command: every identical artifact is kept, nothing is profiled again.

Cost: about 100k profiled tokens per sample; on 2 CPU cores the profile dominates.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from babelmoe import artifacts
from babelmoe.corpus.study import overlap
from babelmoe.errors import BabelmoeError, setting
from babelmoe.models.loading import LoadedModel, ModelSpec, as_loaded
from babelmoe.stages.config import StudyConfig
from babelmoe.stages.sequence import StageTimer, run_sequence

logger = logging.getLogger(__name__)


def run_study(
    config: StudyConfig,
    run_dir: Path,
    *,
    model: LoadedModel | ModelSpec,
    force: bool = False,
) -> Path:
    """Run the study into ``run_dir`` with ``model`` (a spec loads once, after the run folders
    are checked); returns the report's path."""
    from babelmoe.stages.analyse import run_analysis
    from babelmoe.stages.covariates import run_covariates
    from babelmoe.stages.profile import run_profile
    from babelmoe.stages.report import build_report

    run_dir = Path(run_dir)
    stage = StageTimer(done="study: %s", summary="study timings")
    logger.info(
        "study: %d languages, %d tokens each, into %s",
        len(config.languages),
        config.budget,
        run_dir,
    )
    second_dir = run_dir / REPLICATION_DIR
    artifacts.ensure_unlocked(run_dir)  # a second writer: refused before the model loads
    if config.replication:
        check_disjoint(config)
        artifacts.ensure_unlocked(second_dir)
        logger.info("study: %s", config.replication_statement())
    loaded = stage("load", as_loaded, model)

    def replication() -> None:
        if not config.replication:
            return
        from babelmoe.analysis.replication import write_replication

        share_partition(run_dir, second_dir, force=force)
        profile = config.replication_profile
        stage("replication profile", run_profile, profile, second_dir, model=loaded, force=force)
        # the same references and covariates as the first sample, or its claims are not comparable
        stage("replication covariates", run_covariates, None, second_dir, model=loaded, force=force)
        stage("replication analyse", run_analysis, config.analysis, second_dir)
        stage("replication report", build_report, second_dir)
        rows = stage("replication check", write_replication, run_dir)
        verdicts = [r["verdict"] for r in rows]
        logger.info(
            "replication: %s",
            ", ".join(f"{verdicts.count(v)} {v}" for v in dict.fromkeys(verdicts)),
        )

    return run_sequence(
        stage, config, run_dir, model=loaded, force=force, before_report=replication
    )


REPLICATION_DIR = "replication"


def check_disjoint(config: StudyConfig) -> None:
    """Refuse a replication sample that shares an ISO 639-3 language with the first."""
    shared = overlap(config.languages, config.replication_languages, config.corpus)
    if shared:
        listed = ", ".join(f"{request} ({iso})" for request, iso in shared)
        raise BabelmoeError(
            f"the replication sample shares {len(shared)} language(s) with the first sample by "
            f"ISO 639-3: {listed}",
            f"choose {setting('replication_languages')} outside the study's languages",
        )


def share_partition(run_dir: Path, second_dir: Path, force: bool = False) -> None:
    """Copy ``run_dir``'s partition into ``second_dir`` (kept when an identical one is there).

    The split clusters weights only, so both samples use one partition; a different partition
    already in ``second_dir`` is refused (``force``: replaced)."""
    second_dir.mkdir(parents=True, exist_ok=True)
    names = [f"{artifacts.PARTITION}{suffix}" for suffix in (".json", ".safetensors")]
    present = [(second_dir / name).exists() for name in names]
    if all(present) and _partition_id(run_dir) == _partition_id(second_dir):
        return  # the same partition (a separately run split of the same seed: its timing differs)
    if any(present) and not force:
        raise BabelmoeError(
            f"{second_dir} already holds another partition than {run_dir}",
            f"move it away or pass {setting('force')} to replace it with the first sample's",
        )
    with artifacts.run_lock(second_dir):
        for name in names:
            temporary = second_dir / f".{name}.tmp"
            shutil.copyfile(run_dir / name, temporary)
            temporary.replace(second_dir / name)
    logger.info("study: %s shares the partition of %s", second_dir, run_dir)


def _partition_id(folder: Path) -> tuple[str | None, str | None]:
    """(partition sha256, tensors sha256) recorded in ``folder``'s partition.json."""
    try:
        meta = json.loads((folder / f"{artifacts.PARTITION}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None
    return meta.get("partition_sha256"), meta.get("tensors_sha256")
