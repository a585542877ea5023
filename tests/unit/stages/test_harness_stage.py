"""``babelmoe evaluate`` with harness tasks, on a run folder of the tiny model: ``--tasks`` with a
user's task YAML, the shipped configs written for ``lm_eval`` re-runs, lm-eval's own files, and
the one-line errors (a named task with no file for any language; lm-eval not installed)."""

from __future__ import annotations

import json

import pytest

from babelmoe.cli import main
from babelmoe.errors import BabelmoeError
from babelmoe.evaluate import harness
from babelmoe.stages.evaluate import EvaluateConfig, check_named_tasks, run_evaluate
from babelmoe.testing import MC_TASK, cpu_spec

pytest.importorskip("lm_eval")


def test_tasks_and_udhr_cont_run_and_are_written_in_both_formats(run, tmp_path):
    run_dir, model_dir = run
    data = tmp_path / "capitals.jsonl"
    rows = [
        ("The capital of France is", ["Paris", "Rome"], 0),
        ("Berlin is in", ["Peru", "Germany"], 1),
    ]
    data.write_text(
        "".join(json.dumps({"q": q, "choices": c, "gold": g}) + "\n" for q, c, g in rows)
    )
    task = tmp_path / "capitals.yaml"
    task.write_text(MC_TASK.format(data=data))
    config = EvaluateConfig(languages=("en",), udhr_cont=True, tasks=(str(task),), limit=3)
    out = tmp_path / "out"
    path = run_evaluate(config, run_dir, model=cpu_spec(model_dir), out=out)
    results = json.loads(path.read_text())["results"]
    assert results["capitals"]["all"]["n"] == 2 and 0 <= results["capitals"]["all"]["acc"] <= 1
    assert 1 <= results["udhr-cont"]["en"]["n"] <= 3  # scored by babelmoe ...
    assert (out / "harness_tasks" / "babelmoe_udhr_cont_en.yaml").is_file()  # ... re-runnable
    lm_results = json.loads((out / "lm_eval" / "results.json").read_text())
    assert lm_results["results"]["capitals"]["acc,none"] == results["capitals"]["all"]["acc"]
    assert len((out / "lm_eval" / "samples_capitals.jsonl").read_text().splitlines()) == 2
    assert (out / "capitals.all.items.jsonl").is_file()


def test_a_named_task_with_no_file_for_any_language_is_an_error(run, tmp_path, capsys):
    run_dir, model_dir = run
    (tmp_path / "mgsm").mkdir()
    (tmp_path / "mgsm" / "mgsm_de.tsv").write_text("two plus two?\t4\n")
    code = None
    try:
        main(["evaluate", str(model_dir), "--run", str(run_dir), "--mgsm", str(tmp_path / "mgsm"),
              "--out", str(tmp_path / "out")])  # fmt: skip
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "no mgsm_{lang}.tsv for any asked language" in err and str(tmp_path / "mgsm") in err
    (tmp_path / "xcsqa" / "de").mkdir(parents=True)
    config = EvaluateConfig(xcsqa=tmp_path / "xcsqa")
    with pytest.raises(BabelmoeError, match=r"no \{lang\}/dev.jsonl for any asked language"):
        check_named_tasks(config, {"en": ["en", "eng"], "fr": ["fr", "fra"]})


def test_harness_tasks_without_lm_eval_say_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(harness, "lm_eval_available", lambda: False)
    with pytest.raises(BabelmoeError, match=r"pip install 'babelmoe\[eval\]'"):
        check_named_tasks(EvaluateConfig(tasks=("xnli_fr",)), {"en": ["en"]})
    check_named_tasks(EvaluateConfig(udhr_cont=True), {"en": ["en"]})  # needs no extra


def test_unknown_task_names_and_missing_task_files_are_refused_before_the_model_loads(
    run, monkeypatch, tmp_path, capsys
):
    """lm-eval's task index stands in for the real one (building that takes ~20 s); the model
    is never loaded."""

    class Index:
        all_tasks = ("hellaswag", "xnli_fr", "mgsm_direct")

    monkeypatch.setattr(harness, "_task_manager", lambda paths, include_defaults: Index())
    monkeypatch.setattr(
        "babelmoe.stages.evaluate.load_for_evaluation",
        lambda *a: pytest.fail("the model was loaded"),
    )
    run_dir, model_dir = run
    for tasks, message in [
        ("hellaswag,xnli_frr", "lm-eval does not know task xnli_frr (did you mean 'xnli_fr'?)"),
        (str(tmp_path / "missing.yaml"), f"no such task file: {tmp_path / 'missing.yaml'}"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main(["evaluate", str(model_dir), "--run", str(run_dir), "--tasks", tasks,
                  "--out", str(tmp_path / "out")])  # fmt: skip
        err = capsys.readouterr().err.strip()
        assert exc.value.code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_sweep_runs_harness_tasks_on_every_pruned_model(run, tmp_path):
    from babelmoe.evaluate.harness import HarnessConfig
    from babelmoe.models.loading import load_model
    from babelmoe.stages.sweep import SweepConfig, run_sweep

    run_dir, model_dir = run
    data = tmp_path / "capitals.jsonl"
    data.write_text(
        json.dumps({"q": "Paris is in", "choices": ["France", "Peru"], "gold": 0}) + "\n"
    )
    task = tmp_path / "capitals.yaml"
    task.write_text(MC_TASK.format(data=data))
    config = SweepConfig(methods=("sort",), ratios=(0.25,), random_seeds=(0,), languages=("en",))
    harness_config = HarnessConfig(tasks=(str(task),))
    path = run_sweep(config, run_dir, model=load_model(cpu_spec(model_dir)), harness=harness_config)
    summary = json.loads(path.read_text())
    models = {(r["method"], r["seed"]) for r in summary["rows"]}
    assert all(set(r["harness"]) == {"capitals"} for r in summary["rows"])
    table = [r for r in summary["harness"] if r["metric"] == "acc"]
    assert {(r["method"], r["seed"]) for r in table} == models  # once per pruned model
    assert all(r["value"] in (0.0, 1.0) for r in table)
    assert (run_dir / "sweep" / "harness.csv").read_text().startswith("method,ratio,seed,target")
    section = json.loads((run_dir / "sweep" / "report_section.json").read_text())
    assert "lm-evaluation-harness tasks" in section["details"][0]["html"]
