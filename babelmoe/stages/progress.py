"""Progress of the main job: the plan of stages, and how long the rest will take (pure).

The runner (``stages.run``) builds the plan before it starts, then reports each stage's start
and end to a callback; the command line decides how to show it (``babelmoe run`` prints
``[i/N] stage ... about m:ss left`` above each stage's own progress bar). The library itself
only logs.

The estimate of time left: every stage has a prior cost, in seconds of the default job on 2 CPU
cores (Gemma 3 270M, nine UDHR languages; README), scaled by what the configuration changes
(the number of languages; the sweep's number of evaluations and documents). Once stages finish,
the priors are calibrated on what they took: a stage of a kind already run (the extra seeds'
split and profile repeat the main ones' work) is predicted by that kind's measured ratio of
actual to prior; a stage that runs the model (split, profile, sweep) and has no measured kind yet
by the ratio over the finished model stages (a bigger model or a faster device moves them
together); the analysis and the report, whose cost does not follow the model's speed, by their
prior. So the first estimate is a guess for the default model on a 2-core CPU, and the model
stages' estimate fits the machine and model at hand as soon as the first split and profile end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Seconds each kind of stage took in the default job on 2 CPU cores (README: load 8 s, split
# 17-23 s, profile 29-36 s per seed, analysis 25 s, sweep 81 s; report a few seconds).
PRIOR_SECONDS = {
    "load": 8.0,
    "split": 20.0,
    "profile": 33.0,
    "covariates": 10.0,  # bits per byte on a few held-out articles per language
    "analyse": 25.0,
    "sweep": 81.0,
    "report": 5.0,
}
# Stages whose cost follows the model's speed on the device (they run it).
MODEL_KINDS = frozenset({"split", "profile", "sweep"})
DEFAULT_LANGUAGES = 9
DEFAULT_SWEEP_EVALUATIONS = 144  # 9 languages: dense 9 + 3 ratios x (3 random x 9 + 2 x 9)
DEFAULT_SWEEP_DOCUMENTS = 3


@dataclass(frozen=True)
class Stage:
    """One step of the main job.

    Attributes:
        name: what the user reads (``profile seed 1``).
        kind: the kind of work, a key of ``PRIOR_SECONDS``.
        prior: expected seconds before any stage has been measured.
    """

    name: str
    kind: str
    prior: float


@dataclass(frozen=True)
class StageEvent:
    """A stage started (``seconds`` None) or finished (``seconds``: how long it took).

    Attributes:
        index: 1-based position of the stage in the plan.
        total: stages in the plan.
        stage: the stage.
        seconds: its duration, once finished.
        elapsed: seconds since the job started.
        left: estimated seconds until the job ends (None: nothing to go on).
    """

    index: int
    total: int
    stage: Stage
    seconds: float | None
    elapsed: float
    left: float | None


ProgressCallback = Callable[[StageEvent], None]


def plan_stages(
    n_languages: int,
    extra_seeds: Sequence[int],
    sweep_evaluations: int | None,
    sweep_documents: int | None,
) -> list[Stage]:
    """The main job's stages in order. ``sweep_evaluations``: (model, language) evaluations of
    the sweep (None: no sweep); ``sweep_documents``: held-out documents per evaluation (None:
    all, counted as ten)."""
    languages = n_languages / DEFAULT_LANGUAGES
    profile = PRIOR_SECONDS["profile"] * languages
    stages = [
        Stage("load", "load", PRIOR_SECONDS["load"]),
        Stage("split", "split", PRIOR_SECONDS["split"]),
        Stage("profile", "profile", profile),
        Stage("covariates", "covariates", PRIOR_SECONDS["covariates"] * languages),
    ]
    for seed in extra_seeds:
        stages.append(Stage(f"split seed {seed}", "split", PRIOR_SECONDS["split"]))
        stages.append(Stage(f"profile seed {seed}", "profile", profile))
    stages.append(Stage("analyse", "analyse", PRIOR_SECONDS["analyse"] * languages))
    if sweep_evaluations is not None:
        documents = (sweep_documents or 10) / DEFAULT_SWEEP_DOCUMENTS
        share = sweep_evaluations / DEFAULT_SWEEP_EVALUATIONS
        stages.append(Stage("sweep", "sweep", PRIOR_SECONDS["sweep"] * share * documents))
    stages.append(Stage("report", "report", PRIOR_SECONDS["report"]))
    return stages


def seconds_left(
    stages: Sequence[Stage], took: Sequence[float], current_elapsed: float = 0.0
) -> float:
    """Estimated seconds until the last stage ends, when the first ``len(took)`` stages took
    ``took`` seconds and the next one has run ``current_elapsed`` seconds."""
    done = list(zip(stages[: len(took)], took, strict=True))
    ratios: dict[str, list[float]] = {}
    for stage, seconds in done:
        ratios.setdefault(stage.kind, []).append(seconds / stage.prior if stage.prior else 1.0)
    model_prior = sum(s.prior for s, _ in done if s.kind in MODEL_KINDS)
    model_ratio = (
        sum(t for s, t in done if s.kind in MODEL_KINDS) / model_prior if model_prior > 0 else 1.0
    )
    left = 0.0
    for i, stage in enumerate(stages[len(took) :]):
        same = ratios.get(stage.kind)
        unmeasured = model_ratio if stage.kind in MODEL_KINDS else 1.0
        expected = stage.prior * (sum(same) / len(same) if same else unmeasured)
        left += max(expected - current_elapsed, 0.0) if i == 0 else expected
    return left


def clock(seconds: float) -> str:
    """``seconds`` as m:ss (h:mm:ss from an hour)."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
