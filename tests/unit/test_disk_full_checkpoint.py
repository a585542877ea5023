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
