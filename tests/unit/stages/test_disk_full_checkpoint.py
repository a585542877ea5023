"""A full disk (a file size limit, set in a forked child for one write) while a checkpoint is
written: the command ends with one line and exit 3, the previous checkpoint survives intact, and
the re-run resumes from it to the result of an uninterrupted run."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import resource
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.cli_helpers import (
    PROFILE_ARGS,
    _child,
    run_cli,
    temp_files,
    tiny_checkpoint,
    tiny_corpus,
    tiny_run,
)


def _limited_child(argv: list[str], log: str, marker: str, occurrence: int) -> None:
    """``babelmoe ARGV`` where the ``occurrence``-th tensor write whose path holds ``marker``
    runs under a file size limit of 64 bytes (the write fails with EFBIG, as on a full disk)."""
    import babelmoe.artifacts as artifacts

    real = artifacts.save_file
    seen = 0

    def save_file(tensors, path, metadata=None):
        nonlocal seen
        if marker in str(path):
            seen += 1
        if seen != occurrence or marker not in str(path):
            return real(tensors, path, metadata=metadata)
        limits = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, limits[1]))
        try:
            return real(tensors, path, metadata=metadata)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, limits)

    artifacts.save_file = save_file
    _child(argv, log, None)


def run_limited(argv: list, log: Path, marker: str, occurrence: int) -> int:
    context = multiprocessing.get_context("fork")
    child = context.Process(
        target=_limited_child, args=([str(a) for a in argv], str(log), marker, occurrence)
    )
    child.start()
    child.join(300)
    assert child.exitcode is not None, "the child hung"
    return child.exitcode


@pytest.mark.timeout(600)
def test_profile_checkpoint_on_a_full_disk_keeps_the_previous_and_resumes(
    tmp_path_factory, tmp_path, caplog
):
    model, corpus = tiny_checkpoint(tmp_path_factory), tiny_corpus(tmp_path_factory)
    reference = tiny_run(tmp_path_factory)
    run = tmp_path / "run"
    run.mkdir()
    for name in ("partition.safetensors", "partition.json"):
        shutil.copy(reference / name, run / name)
    argv = ["profile", run, "--model", model, "--corpus", corpus, *PROFILE_ARGS,
            "--checkpoint-every", "1", "--device", "cpu"]  # fmt: skip
    log = tmp_path / "log.txt"
    code = run_limited(argv, log, ".profile_state", occurrence=2)
    text = log.read_text()
    assert code == 3, text
    errors = [line for line in text.splitlines() if line.startswith("babelmoe: error:")]
    assert len(errors) == 1 and "file too large writing" in errors[0], text
    assert "Traceback" not in text
    assert text.rstrip().splitlines()[-1] == errors[0]  # the error is the last line
    state = run / ".profile_state" / "rank0-of1"
    assert (state / "state-a.json").is_file() and not (state / "state-b.json").exists()
    assert not temp_files(run)
    assert not (run / "profile.json").exists()
    with caplog.at_level(logging.INFO, logger="babelmoe"):
        result = run_cli(argv)
    assert result.code == 0, result.stderr
    assert "resuming from batch 1" in caplog.text
    a = load_file(str(run / "profile.safetensors"))
    b = load_file(str(reference / "profile.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] == b[key]).all(), key
    with contextlib.suppress(FileNotFoundError):
        assert not any((run / ".profile_state").iterdir())


def _limited_rows_child(argv: list[str], log: str, occurrence: int) -> None:
    """``babelmoe sweep`` where the ``occurrence``-th appended row may grow ``rows.jsonl`` by
    10 bytes only (a disk that fills up in the middle of a line)."""
    import babelmoe.stages.sweep as sweep

    real = sweep.append_row
    seen = 0

    def append_row(path: Path, row: dict) -> None:
        nonlocal seen
        seen += 1
        if seen != occurrence:
            return real(path, row)
        limits = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + 10, limits[1]))
        try:
            return real(path, row)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, limits)

    sweep.append_row = append_row
    _child(argv, log, None)


def _rows(path: Path) -> dict[tuple, float]:
    import json

    rows = [json.loads(line) for line in path.read_text().splitlines()[1:]]
    return {
        (r["method"], r["ratio"], r["seed"], r["target"], r["eval_lang"]): r["ppl"] for r in rows
    }


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sweep_rows_on_a_full_disk_keep_the_finished_rows_and_resume(
    tmp_path_factory, tmp_path, caplog
):
    model = tiny_checkpoint(tmp_path_factory)
    runs = []
    for name in ("run", "reference"):
        shutil.copytree(tiny_run(tmp_path_factory), tmp_path / name)
        runs.append(tmp_path / name)
    run, reference = runs

    def argv(folder: Path) -> list:
        return ["sweep", folder, "--methods", "sort", "--ratios", "0.25", "--random-seeds", "0",
                "--no-specificity", "--max-documents", "1", "--model", model,
                "--device", "cpu"]  # fmt: skip

    context = multiprocessing.get_context("fork")
    log = tmp_path / "log.txt"
    child = context.Process(
        target=_limited_rows_child, args=([str(a) for a in argv(run)], str(log), 3)
    )
    child.start()
    child.join(300)
    text = log.read_text()
    assert child.exitcode == 3, text
    assert text.rstrip().splitlines()[-1].startswith("babelmoe: error: file too large"), text
    rows_file = run / "sweep" / "rows.jsonl"
    kept = rows_file.read_text().splitlines()
    assert len(kept) == 4, kept  # the header, 2 finished rows, the stub of the third
    assert not (run / "sweep" / "sweep.json").exists()
    with caplog.at_level(logging.INFO, logger="babelmoe"):
        result = run_cli(argv(run))
    assert result.code == 0, result.stderr
    assert "resuming: 2 rows already" in caplog.text
    assert run_cli(argv(reference)).code == 0
    assert _rows(rows_file) == _rows(reference / "sweep" / "rows.jsonl")
