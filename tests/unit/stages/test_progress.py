"""The main job's progress: the plan of stages, the estimate of time left, the events."""

from __future__ import annotations

import pytest

from babelmoe.stages.config import PipelineConfig
from babelmoe.stages.progress import (
    PRIOR_SECONDS,
    StageEvent,
    clock,
    plan_stages,
    seconds_left,
)


def test_plan_lists_every_stage_in_order() -> None:
    plan = plan_stages(9, (1, 2), sweep_evaluations=144, sweep_documents=3)
    assert [s.name for s in plan] == [
        "load", "split", "profile", "covariates", "split seed 1", "profile seed 1", "split seed 2",
        "profile seed 2", "analyse", "sweep", "report",
    ]  # fmt: skip
    assert [s.prior for s in plan if s.kind == "sweep"] == [PRIOR_SECONDS["sweep"]]
    no_sweep = plan_stages(18, (), sweep_evaluations=None, sweep_documents=None)
    assert [s.kind for s in no_sweep] == [
        "load", "split", "profile", "covariates", "analyse", "report",
    ]  # fmt: skip
    assert no_sweep[2].prior == pytest.approx(2 * PRIOR_SECONDS["profile"])  # twice the languages


def test_estimate_is_the_priors_then_calibrated_per_kind() -> None:
    plan = plan_stages(9, (1,), sweep_evaluations=144, sweep_documents=3)
    assert seconds_left(plan, []) == pytest.approx(sum(s.prior for s in plan))
    # load, split and profile took 3 x their priors: the seed's split and profile are predicted
    # by their own kind (3 x), the sweep by the model stages' ratio (3 x), the analysis and the
    # report by their priors (their cost does not follow the model's speed)
    took = [3 * s.prior for s in plan[:3]]
    by_model = sum(s.prior for s in plan[3:] if s.kind in ("split", "profile", "sweep"))
    other = sum(s.prior for s in plan[3:] if s.kind in ("covariates", "analyse", "report"))
    assert seconds_left(plan, took) == pytest.approx(3 * by_model + other)
    # time spent in the current stage counts against it, never below zero
    assert plan[3].kind == "covariates"
    assert seconds_left(plan, took, current_elapsed=1e9) == pytest.approx(
        3 * by_model + other - plan[3].prior
    )
    assert seconds_left(plan, [s.prior for s in plan]) == 0.0


def test_slow_profile_fast_split_are_told_apart() -> None:
    plan = plan_stages(9, (1,), sweep_evaluations=None, sweep_documents=None)
    # load, split (2x faster), profile (4x), covariates (as its prior)
    took = [1.0, plan[1].prior / 2, plan[2].prior * 4, plan[3].prior]
    left = seconds_left(plan, took)
    assert [s.kind for s in plan[4:]] == ["split", "profile", "analyse", "report"]
    expected = plan[4].prior / 2 + plan[5].prior * 4 + plan[6].prior + plan[7].prior
    assert left == pytest.approx(expected)
    # a measured analysis calibrates the next analysis-kind stage only by itself
    assert seconds_left(plan, [*took, 1.0, 1.0, 10 * plan[6].prior]) == pytest.approx(plan[7].prior)


def test_clock() -> None:
    assert (clock(0), clock(59.6), clock(125), clock(3725)) == ("0:00", "1:00", "2:05", "1:02:05")


def test_run_pipeline_reports_each_stage_start_and_end(tmp_path, monkeypatch) -> None:
    """The events of a job whose stages do nothing: i of N in order, the time left shrinking to
    zero with the last stage."""
    report = tmp_path / "report.html"
    noop = lambda *args, **kwargs: None  # noqa: E731
    monkeypatch.setattr("babelmoe.models.loading.load_model", noop)
    monkeypatch.setattr("babelmoe.corpus.load_corpus", noop)
    for target in ("split.run_split", "profile.run_profile", "analyse.run_analysis",
                   "sweep.run_sweep", "covariates.run_covariates"):  # fmt: skip
        monkeypatch.setattr(f"babelmoe.stages.{target}", noop)
    monkeypatch.setattr("babelmoe.stages.report.build_report", lambda run_dir: report)
    from babelmoe.models.spec import ModelSpec
    from babelmoe.stages.run import run_pipeline

    events: list[StageEvent] = []
    got = run_pipeline(
        PipelineConfig(), tmp_path / "run", model=ModelSpec(), progress=events.append
    )
    assert got == report
    n = len(events) // 2
    assert [(e.index, e.total, e.seconds is None) for e in events] == [
        (i // 2 + 1, n, i % 2 == 0) for i in range(2 * n)
    ]
    assert events[0].stage.name == "load" and events[-1].stage.name == "report"
    assert events[-1].left == 0.0
    lefts = [e.left for e in events if e.seconds is None]
    assert lefts == sorted(lefts, reverse=True)
