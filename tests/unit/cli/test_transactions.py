"""Failed writes leave nothing (issue 22): a stage's outputs appear all at once or not at all.

``artifacts.transaction`` on its own (success, failure, a killed run, a user's other files), then
the stages that use it: ``analyse`` over an earlier analysis and ``evaluate --tasks`` with the
disk filling up at every write in turn (an ``ENOSPC`` injected into the atomic writer), each
leaving the run folder byte for byte as it was, with one line and exit 3 from the CLI.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from babelmoe import artifacts
from tests.cli_helpers import run_cli, tiny_checkpoint, tiny_run, tree


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_transaction_replaces_its_outputs_on_success(tmp_path):
    write(tmp_path / "analysis" / "old.csv", "old")
    write(tmp_path / "profile.json", "input")
    with artifacts.transaction(tmp_path, ("analysis", "figures")):
        assert not (tmp_path / "analysis").exists()  # moved aside
        write(tmp_path / "analysis" / "new.csv", "new")
        write(tmp_path / "figures" / "a.png", "png")
    assert sorted(p.name for p in (tmp_path / "analysis").iterdir()) == ["new.csv"]  # no mix
    assert (tmp_path / "profile.json").read_text() == "input"
    assert not (tmp_path / artifacts.TRANSACTION_DIR).exists()


@pytest.mark.parametrize("names", [("analysis", "figures"), None])
def test_a_failed_transaction_leaves_the_folder_as_it_was(tmp_path, names):
    write(tmp_path / "analysis" / "old.csv", "old")
    write(tmp_path / "notes.txt", "the user's")
    before = tree(tmp_path)
    with pytest.raises(OSError), artifacts.transaction(tmp_path, names):
        write(tmp_path / "analysis" / "new.csv", "half")
        write(tmp_path / "figures" / "a.png", "png")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert tree(tmp_path) == before


def test_a_transaction_keeps_the_files_it_did_not_rewrite(tmp_path):
    write(tmp_path / "results.json", "old")
    write(tmp_path / "notes.txt", "the user's")
    with artifacts.transaction(tmp_path):
        write(tmp_path / "results.json", "new")
    assert (tmp_path / "results.json").read_text() == "new"
    assert (tmp_path / "notes.txt").read_text() == "the user's"


def test_a_killed_transaction_is_rolled_back_by_the_next(tmp_path):
    write(tmp_path / "analysis" / "old.csv", "old")
    before = tree(tmp_path)
    backup = tmp_path / artifacts.TRANSACTION_DIR
    # what a SIGKILL inside the block leaves: the backup, its state, a partial new output
    backup.mkdir()
    (backup / ".state").write_text("running\n")
    (tmp_path / "analysis").rename(backup / "analysis")
    write(tmp_path / "analysis" / "half.csv", "partial")
    with pytest.raises(RuntimeError), artifacts.transaction(tmp_path, ("analysis",)):
        raise RuntimeError("the next run fails too")
    assert tree(tmp_path) == before


class DiskFull:
    """``artifacts._fsync_write`` failing with ENOSPC from its ``after``-th call on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, after: int) -> None:
        self.calls = 0
        self.after = after
        real = artifacts._fsync_write

        def write(path: Path, data: bytes) -> None:
            self.calls += 1
            if self.calls >= self.after:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            real(path, data)

        monkeypatch.setattr(artifacts, "_fsync_write", write)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """A run folder with an earlier analysis (and its figures)."""
    run = tiny_run(tmp_path_factory)
    result = run_cli(["analyse", run, "--bootstrap", "0"])
    assert result.code == 0, result.stderr
    return run


@pytest.mark.parametrize("after", [1, 3, 6, 12])
def test_analyse_on_a_full_disk_leaves_the_earlier_analysis(analysed, tmp_path, monkeypatch, after):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(analysed, run)
    before = tree(run)
    disk = DiskFull(monkeypatch, after)
    result = run_cli(["analyse", run, "--bootstrap", "20"])  # would add intervals
    assert disk.calls >= after  # the failure happened
    assert result.code == 3, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("babelmoe:")]
    assert len(lines) == 1 and "no space left on the device writing" in lines[0]
    assert f"writing {run}/" in lines[0]  # the file is named (not "the output", not a temp)
    assert ".tmp" not in lines[0]
    assert tree(run) == before  # no mix of new and old files, nothing half-written


@pytest.mark.slow
@pytest.mark.parametrize("after", [2, 5])
def test_evaluate_tasks_on_a_full_disk_leaves_nothing(tmp_path, monkeypatch, after):
    pytest.importorskip("lm_eval")
    from babelmoe.models.loading import ModelSpec
    from babelmoe.stages.evaluate import EvaluateConfig, run_evaluate
    from babelmoe.testing import MC_TASK, make_run, write_task

    run_dir, model_dir, _ = make_run(tmp_path / "made")
    docs = [{"q": "Paris is in", "choices": ["France", "Peru"], "gold": 0}] * 2
    task = write_task(tmp_path, MC_TASK, docs)
    out = tmp_path / "out"
    write(out / "notes.txt", "the user's")
    before = tree(tmp_path)
    DiskFull(monkeypatch, after)
    config = EvaluateConfig(languages=("en",), tasks=(str(task),))
    spec = ModelSpec(source=str(model_dir), device="cpu", dtype="float32")
    with pytest.raises(OSError):
        run_evaluate(config, run_dir, model=spec, out=out)
    assert tree(tmp_path) == before  # no lm_eval/samples_*.jsonl, no task files


def test_the_sweep_rows_survive_a_bad_task_file_with_force(tmp_path_factory, tmp_path):
    """``sweep --force --tasks BAD.yaml`` must not truncate rows.jsonl before it reads BAD."""
    import shutil

    pytest.importorskip("lm_eval")
    run = tmp_path / "run"
    shutil.copytree(tiny_run(tmp_path_factory), run)
    rows = run / "sweep" / "rows.jsonl"
    write(rows, json.dumps({"identity": {}}) + "\n" + json.dumps({"method": "dense"}) + "\n")
    (tmp_path / "bad.yaml").write_text("task: [\n")
    before = tree(tmp_path)
    model = tiny_checkpoint(tmp_path_factory)
    argv = ["sweep", run, "--force", "--tasks", tmp_path / "bad.yaml", "--model", model]
    result = run_cli([*argv, "--device", "cpu"])
    assert result.code == 2 and "not valid YAML" in result.stderr
    assert tree(tmp_path) == before
