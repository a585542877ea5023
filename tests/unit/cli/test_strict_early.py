"""Strict and early (issue 15): a second writer and a bad corpus are refused before the model
loads; every I/O error class of the libraries we write through ends in exit 3 and one line."""

from __future__ import annotations

import errno
import shutil

import pytest
from safetensors import SafetensorError

from tests.cli_helpers import PROFILE_ARGS, run_cli, tiny_checkpoint, tiny_corpus, tiny_run


@pytest.fixture
def run_folder(tmp_path_factory, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("partition.safetensors", "partition.json"):
        shutil.copy(tiny_run(tmp_path_factory) / name, run / name)
    return run


@pytest.fixture
def no_model(monkeypatch):
    """Loading a model is a test failure: the refusal must come before it."""

    def load_model(spec):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr("babelmoe.models.loading.load_model", load_model)


def test_a_second_writer_is_refused_before_the_model_loads(run_folder, tmp_path_factory, no_model):
    from filelock import FileLock

    from babelmoe import artifacts

    argv = ["profile", run_folder, "--model", tiny_checkpoint(tmp_path_factory),
            "--corpus", tiny_corpus(tmp_path_factory), *PROFILE_ARGS]  # fmt: skip
    with FileLock(str(run_folder / artifacts.LOCK_FILE), timeout=0):
        result = run_cli(argv)
    assert result.code == 2, result.stderr
    assert "another babelmoe run is writing to" in result.stderr


def test_a_bad_corpus_is_refused_before_the_model_loads(
    run_folder, tmp_path_factory, tmp_path, no_model
):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus(tmp_path_factory), corpus)
    (corpus / "fr.txt").write_bytes("été".encode("latin-1"))
    argv = ["profile", run_folder, "--model", tiny_checkpoint(tmp_path_factory),
            "--corpus", corpus, *PROFILE_ARGS]  # fmt: skip
    result = run_cli(argv)
    assert result.code == 2, result.stderr
    assert "not valid UTF-8" in result.stderr


IO_ERRORS = {
    "safetensors-file-too-large": SafetensorError("File too large (os error 27)"),
    "safetensors-disk-full": SafetensorError("No space left on device (os error 28)"),
    "json-disk-full": OSError(errno.ENOSPC, "No space left on device", "run/x.json"),
    "matplotlib-read-only": OSError(errno.EROFS, "Read-only file system", "run/fig.png"),
    "lock-permission": PermissionError(errno.EACCES, "Permission denied", "run/.babelmoe.lock"),
    "input-output": OSError(errno.EIO, "Input/output error", "run/profile.safetensors"),
}


@pytest.mark.parametrize("error", IO_ERRORS.values(), ids=IO_ERRORS.keys())
def test_every_io_error_class_is_exit_3_and_one_line(error, monkeypatch, tmp_path):
    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr("babelmoe.stages.split.run_split", failing)
    result = run_cli(["split", "--out", tmp_path / "run"])
    assert result.code == 3, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.error_lines
    assert len(lines) == 1 and lines[0].startswith("babelmoe: error: "), lines


def test_run_refuses_a_second_writer_before_the_model_loads(
    tmp_path, tmp_path_factory, monkeypatch
):
    from filelock import FileLock

    from babelmoe import artifacts

    def load_model(spec):
        raise AssertionError("the model was loaded before the lock was checked")

    monkeypatch.setattr("babelmoe.models.loading.load_model", load_model)
    run = tmp_path / "run"
    run.mkdir()
    argv = ["run", "--out", run, "--model", tiny_checkpoint(tmp_path_factory),
            "--corpus", tiny_corpus(tmp_path_factory), "--languages", "en,fr"]  # fmt: skip
    with FileLock(str(run / artifacts.LOCK_FILE), timeout=0):
        result = run_cli(argv)
    assert result.code == 2, result.stderr
    assert "another babelmoe run is writing to" in result.stderr
