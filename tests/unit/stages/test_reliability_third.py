"""Issue 22: no stale or fabricated numbers, custom architectures checked against the model.

The one-line refusals are in the bad-input catalogue (``test_bad_inputs.py``); here are the cases
whose right answer is a result: a sweep resumed after its task changed recomputes the rows, a
task without ``acc`` reports none, a huge ``--limit`` means every item, a valid redefinition of
a built-in family is used with a warning.
"""

from __future__ import annotations

import json
import logging

import pytest

from babelmoe.evaluate.task_files import check_task_file, task_fingerprint
from babelmoe.stages.sweep_resume import changed_tasks
from babelmoe.testing import MC_TASK, cpu_spec, write_task

ROLLING_TASK = """task: byte_ppl
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{{{text}}}}"
metric_list:
  - metric: word_perplexity
  - metric: byte_perplexity
  - metric: bits_per_byte
"""


def test_the_fingerprint_follows_the_config_and_the_data_not_the_file(tmp_path):
    docs = [{"q": "Paris is in", "choices": ["France", "Peru"], "gold": 0}]
    path = write_task(tmp_path, MC_TASK, docs)
    first = task_fingerprint(str(path))
    assert task_fingerprint(str(path)) == first  # deterministic
    (tmp_path / "task.jsonl").write_text(json.dumps({**docs[0], "gold": 1}) + "\n")
    relabelled = task_fingerprint(str(path))
    path.write_text(path.read_text().replace("{{q}}", "Q: {{q}}"))
    reworded = task_fingerprint(str(path))
    path.write_text(path.read_text() + "process_docs: !function utils.keep\n")
    (tmp_path / "utils.py").write_text("def keep(docs):\n    return docs\n")
    with_function = task_fingerprint(str(path))
    (tmp_path / "utils.py").write_text("def keep(docs):\n    return docs.select([0])\n")
    fingerprints = {first, relabelled, reworded, with_function, task_fingerprint(str(path))}
    assert len(fingerprints) == 5
    old = {"config": 1, "harness": {"tasks": ["t"], "tasks_sha256": {"t": "a"}}}
    new = {"config": 1, "harness": {"tasks": ["t"], "tasks_sha256": {"t": "b"}}}
    assert changed_tasks(old, new) == ["t"]
    assert changed_tasks(old, {**new, "config": 2}) is None  # another sweep: refused
    assert changed_tasks(old, old) is None


@pytest.mark.slow
def test_a_resumed_sweep_recomputes_rows_when_the_task_changed(run, tmp_path, caplog):
    """The issue's case: every gold label flipped between two identical commands. One item with
    two choices: the accuracy flips too, so the second run cannot keep the first's number."""
    from babelmoe.evaluate.harness import HarnessConfig
    from babelmoe.models.loading import load_model
    from babelmoe.stages.sweep import SweepConfig, run_sweep

    run_dir, model_dir = run
    docs = [{"q": "Paris is in", "choices": ["France", "Peru"], "gold": 0}]
    task = write_task(tmp_path, MC_TASK, docs)
    config = SweepConfig(methods=("sort",), ratios=(0.25,), random_seeds=(0,), languages=("en",))
    loaded = load_model(cpu_spec(model_dir))
    harness = HarnessConfig(tasks=(str(task),))

    def accuracies() -> list[float]:
        path = run_sweep(config, run_dir, model=loaded, harness=harness)
        rows = json.loads(path.read_text())["rows"]
        return [r["harness"]["capitals"]["acc"] for r in rows]

    first = accuracies()
    with caplog.at_level(logging.INFO, logger="babelmoe"):
        assert accuracies() == first  # unchanged: resumed
    assert "resuming: 3 rows" in caplog.text  # dense, sort, random
    (tmp_path / "task.jsonl").write_text(json.dumps({**docs[0], "gold": 1}) + "\n")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="babelmoe"):
        second = accuracies()
    assert "task " + str(task) + " changed since its rows were evaluated" in caplog.text
    assert second == [1.0 - a for a in first]


@pytest.mark.slow
def test_a_task_without_acc_reports_none_and_a_huge_limit_means_every_item(run, tmp_path):
    from babelmoe.stages.evaluate import EvaluateConfig, run_evaluate

    run_dir, model_dir = run
    texts = ["the cat sat on the mat", "le chat est sur le tapis", "the end"]
    task = write_task(tmp_path, ROLLING_TASK, [{"text": t} for t in texts], "rolling")
    config = EvaluateConfig(languages=("en",), tasks=(str(task),), limit=10**20)
    out = tmp_path / "out"
    path = run_evaluate(config, run_dir, model=cpu_spec(model_dir), out=out)
    metrics = json.loads(path.read_text())["results"]["byte_ppl"]["all"]
    assert metrics["n"] == 3  # every item, no islice overflow
    assert metrics["bits_per_byte"] > 0
    assert not {"acc", "acc_stderr", "acc_norm", "exact_match"} & set(metrics)
    items = [json.loads(line) for line in (out / "byte_ppl.all.items.jsonl").open()]
    assert all(item["correct"] is None for item in items)  # nothing scored as right or wrong


def test_a_valid_redefinition_of_a_builtin_family_is_used_with_a_warning(tmp_path, caplog):
    from babelmoe.models.architectures import register_from_file
    from babelmoe.models.ffn import ffns
    from babelmoe.testing import byte_tokenizer, tiny_llama

    entry = {
        "layers": ["moved.layers", "model.layers"],  # a path transformers might move
        "mlp": "mlp",
        "up": "up_proj",
        "gate": "gate_proj",
        "down": "down_proj",
    }
    (tmp_path / "arch.json").write_text(json.dumps({"llama": entry, "my_llama": "llama"}))
    assert register_from_file(tmp_path / "arch.json") == ["llama", "my_llama"]
    model = tiny_llama(byte_tokenizer())
    with caplog.at_level(logging.WARNING, logger="babelmoe"):
        assert len(ffns(model)) == model.config.num_hidden_layers
    assert "the built-in architecture 'llama' is redefined by the user" in caplog.text


def test_the_shipped_task_configs_pass_the_check(tmp_path):
    from babelmoe.evaluate.harness_tasks import write_xcsqa_task

    rows = [
        {
            "id": "1",
            "question": {
                "stem": "Où dort le chat ?",
                "choices": [
                    {"label": x, "text": t}
                    for x, t in zip("ABC", ["lit", "mer", "ciel"], strict=True)
                ],
            },
            "answerKey": "A",
        }
    ]
    data = tmp_path / "dev.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = write_xcsqa_task(tmp_path / "tasks", data, "fr")
    assert check_task_file(task.path).name == task.name


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_bad_dist_timeout_under_torchrun_is_said_once(tmp_path_factory, tmp_path):
    """Every rank finds the same bad setting: rank 0 says it in one line, the others exit with
    the same code silently. (torchrun's own report of the failed ranks follows; no rank can
    stop the launcher from printing it.)"""
    from tests.cli_helpers import (
        PROFILE_ARGS,
        copy_partition,
        tiny_checkpoint,
        tiny_corpus,
        torchrun,
    )
    from tests.cli_helpers import tiny_run as make_tiny_run

    model, corpus = tiny_checkpoint(tmp_path_factory), tiny_corpus(tmp_path_factory)
    run_dir = copy_partition(make_tiny_run(tmp_path_factory), tmp_path / "run")
    argv = ["profile", run_dir, "--model", model, "--corpus", corpus, *PROFILE_ARGS]
    proc = torchrun("babelmoe.cli", [*argv, "--device", "cpu"], {"BABELMOE_DIST_TIMEOUT": "inf"})
    assert proc.returncode != 0
    ours = [line for line in proc.stderr.splitlines() if line.startswith("babelmoe: error:")]
    assert ours == [
        "babelmoe: error: BABELMOE_DIST_TIMEOUT must be a finite number > 0, got inf (set e.g. 600)"
    ], proc.stderr[-2000:]
    assert "exitcode  : 2" in proc.stderr  # both ranks: the usage code, not a crash


def test_sigterm_during_profile_gives_one_line_and_leaves_nothing(
    tmp_path_factory, tmp_path, monkeypatch
):
    """``kill PID`` (a scheduler's time limit) is reported like Ctrl-C: one line, exit 143."""
    import os
    import shutil
    import signal
    import time

    from tests.cli_helpers import PROFILE_ARGS, run_cli, tiny_checkpoint, tiny_corpus, tree
    from tests.cli_helpers import tiny_run as make_tiny_run

    model, corpus = tiny_checkpoint(tmp_path_factory), tiny_corpus(tmp_path_factory)
    run_dir = tmp_path / "run"
    shutil.copytree(make_tiny_run(tmp_path_factory), run_dir)
    for name in ("profile.json", "profile.safetensors"):
        (run_dir / name).unlink()
    before = tree(run_dir)

    def killed(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        raise AssertionError("SIGTERM did not stop the run")

    monkeypatch.setattr("babelmoe.stages.profile.profile_batches", killed)
    argv = ["profile", run_dir, "--model", model, "--corpus", corpus, *PROFILE_ARGS]
    result = run_cli([*argv, "--device", "cpu"])
    assert result.code == 143
    assert result.error_lines[-1:] == [
        "babelmoe: error: terminated (SIGTERM); a re-run of the same command resumes or "
        "restarts cleanly"
    ]
    assert tree(run_dir) == before
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back


def test_hub_retries_are_not_printed_unless_verbose():
    """A bad ``hf:`` corpus made the hub client print each of its retries twice (its own
    handler and the root's); the failure reaches the user as one line, retries with -v only."""
    from babelmoe.cli import _root

    hub = logging.getLogger("huggingface_hub.utils._http")
    saved = logging.getLogger("huggingface_hub").level
    try:
        _root(verbose=False, quiet=False, architectures=None)
        assert not hub.isEnabledFor(logging.WARNING)
        _root(verbose=True, quiet=False, architectures=None)
        assert hub.isEnabledFor(logging.WARNING)
    finally:
        logging.getLogger("huggingface_hub").setLevel(saved)


def test_a_moved_task_file_with_the_same_contents_resumes():
    from babelmoe.stages.sweep_resume import moved_tasks_only

    old = {"config": 1, "harness": {"tasks": ["a/t.yaml"], "tasks_sha256": {"a/t.yaml": "x"}}}
    new = {"config": 1, "harness": {"tasks": ["b/t.yaml"], "tasks_sha256": {"b/t.yaml": "x"}}}
    assert moved_tasks_only(old, new)
    edited = {"config": 1, "harness": {"tasks": ["b/t.yaml"], "tasks_sha256": {"b/t.yaml": "y"}}}
    assert not moved_tasks_only(old, edited)
    assert not moved_tasks_only(old, {**new, "config": 2})
