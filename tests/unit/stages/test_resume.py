"""A profile killed with SIGKILL at many points, re-run each time, ends bit-identical to an
uninterrupted run; a kill never leaves a half-written artifact under its final name.

The profile runs in a forked child of the test process (babelmoe is imported already, so a run
starts in well under a second); the child is killed by the test (after a seeded random delay, or
once its checkpoints show a given batch) or kills itself at an exact point of an atomic write.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from babelmoe import artifacts
from babelmoe.profile.artifact import load_profile
from babelmoe.stages.profile import STATE_DIR, STATE_SLOTS
from babelmoe.testing import write_word_corpus
from tests.cli_helpers import (
    SPLIT_ARGS,
    fork_cli,
    run_cli,
    temp_files,
    tiny_checkpoint,
)

KILLED = -9  # multiprocessing's exit code of a child ended by SIGKILL
TIMEOUT = 120  # seconds; a run takes about one


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The tiny model, a corpus of ~30 one-batch documents and a partition."""
    root = tmp_path_factory.mktemp("resume")
    model = tiny_checkpoint(tmp_path_factory)
    corpus = write_word_corpus(root / "corpus", docs=18, words=40)
    split = root / "split"
    result = run_cli(["split", "--model", model, "--out", split, *SPLIT_ARGS])
    assert result.code == 0, result.stderr
    return model, corpus, split


def _profile_argv(run: Path, model: Path, corpus: Path) -> list:
    return [
        "profile", run, "--model", model, "--corpus", corpus, "--languages", "en,fr",
        "--batch-size", "1", "--checkpoint-every", "1", "--units", "4", "--device", "cpu",
    ]  # fmt: skip


def _new_run(base: Path, split: Path, name: str) -> Path:
    run = base / name
    run.mkdir()
    for suffix in (".json", ".safetensors"):
        shutil.copy2(split / f"partition{suffix}", run / f"partition{suffix}")
    return run


def _checkpointed_batch(run: Path) -> int:
    """The latest batch any readable checkpoint records (0: none)."""
    best = 0
    for slot in STATE_SLOTS:
        path = run / STATE_DIR / "rank0-of1" / f"{slot}.json"
        with contextlib.suppress(OSError, ValueError, KeyError):
            best = max(best, int(json.loads(path.read_text())["next_batch"]))
    return best


def _assert_no_half_artifact(run: Path) -> None:
    """Either no profile artifact (no JSON: the commit marker) or a complete, valid one."""
    if artifacts.artifact_exists(run, artifacts.PROFILE):
        load_profile(run)  # checks the schema and the tensors' sha256


def _complete(argv: list, log: Path) -> float:
    """Run to the end in a forked child; returns the seconds it took."""
    started = time.perf_counter()
    child = fork_cli(argv, log)
    child.join(TIMEOUT)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0, log.read_text()
    return time.perf_counter() - started


def test_profile_killed_at_many_points_resumes_bit_identical(setup, tmp_path):
    model, corpus, split = setup
    reference = _new_run(tmp_path, split, "reference")
    seconds = _complete(_profile_argv(reference, model, corpus), tmp_path / "reference.log")

    run = _new_run(tmp_path, split, "run")
    rng = random.Random(7)
    # (how, argument): a kill after a delay, a kill once the checkpoints reach a batch (plus a
    # random part of the next batch), or a self-kill at an exact point of an atomic write
    # (suffix of the file being renamed, occurrence, before/after the rename).
    plan: list[tuple[str, Any]] = [
        ("delay", rng.uniform(0.05, 0.25) * seconds),  # loading the model or the corpus
        ("batch", 3),
        ("write", ("state-b.safetensors", 1, "after")),  # between a checkpoint's two renames
        ("batch", 9),
        ("write", ("state-a.json", 2, "before")),
        ("batch", 16),
        ("write", ("profile.safetensors", 1, "before")),  # the final write, before any rename
        ("write", ("profile.safetensors", 1, "after")),  # ... between its two renames
        ("write", ("profile.json", 1, "after")),  # ... done, checkpoints not yet removed
    ]
    killed_at: list[int] = []  # the checkpointed batch right after each kill
    for attempt, (how, arg) in enumerate(plan):
        log = tmp_path / f"attempt{attempt}.log"
        resume_from = _checkpointed_batch(run)
        child = fork_cli(
            _profile_argv(run, model, corpus), log, kill_at=arg if how == "write" else None
        )
        if how == "delay":
            child.join(arg)
        elif how == "batch":
            while child.is_alive() and _checkpointed_batch(run) < arg:
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.5) * seconds / 30)  # into the next batch or checkpoint
        else:  # it kills itself
            child.join(TIMEOUT)
        if child.is_alive():
            child.kill()
        child.join(TIMEOUT)
        assert child.exitcode == KILLED, f"attempt {attempt} ({how}) was not killed"
        killed_at.append(_checkpointed_batch(run))
        if how != "delay" and resume_from:  # it went on from the last checkpoint
            assert f"resuming from batch {resume_from} " in log.read_text()
        _assert_no_half_artifact(run)
    _complete(_profile_argv(run, model, corpus), tmp_path / "final.log")  # the same command again

    assert len(set(killed_at)) >= 5, killed_at
    for suffix in (".safetensors", ".json"):
        done = (run / f"profile{suffix}").read_bytes()
        expected = (reference / f"profile{suffix}").read_bytes()
        assert done == expected, f"profile{suffix} differs from the uninterrupted run"
    assert not (run / STATE_DIR).exists()
    assert temp_files(run) == []


def test_other_tokens_are_not_this_profile(setup, tmp_path):
    """The same model files tokenising the corpus differently (another transformers version, an
    edited tokenizer) make another profile: it is neither kept as this one nor resumed."""
    model, corpus, split = setup
    own = tmp_path / "model"
    shutil.copytree(model, own)
    run = _new_run(tmp_path, split, "run")
    argv = ["profile", run, "--model", own, "--corpus", corpus, "--languages", "en,fr",
            "--units", "4", "--device", "cpu"]  # fmt: skip
    assert run_cli(argv).code == 0
    written = (run / "profile.json").stat().st_mtime_ns
    assert run_cli(argv).code == 0  # the same tokens: the profile is kept, not rewritten
    assert (run / "profile.json").stat().st_mtime_ns == written
    spec = json.loads((own / "tokenizer.json").read_text())
    spec["normalizer"] = {"type": "Replace", "pattern": {"String": "e"}, "content": "x"}
    (own / "tokenizer.json").write_text(json.dumps(spec))
    other = run_cli(argv)
    assert other.code != 0
    assert "differs in: tokens_sha256" in other.stderr and "--force" in other.stderr


def test_a_profile_from_before_the_tokens_digest_is_kept(setup, tmp_path):
    """A profile written before profiles recorded their tokens' digest is compared on the other
    fields: re-running its run folder keeps it rather than refusing it."""
    model, corpus, split = setup
    run = _new_run(tmp_path, split, "run")
    argv = ["profile", run, "--model", model, "--corpus", corpus, "--languages", "en,fr",
            "--units", "4", "--device", "cpu"]  # fmt: skip
    assert run_cli(argv).code == 0
    meta = json.loads((run / "profile.json").read_text())
    del meta["tokens_sha256"]  # as the code of 2026-11-29 wrote it (with its checksum)
    meta[artifacts.META_CHECKSUM] = artifacts.meta_sha256(meta)
    (run / "profile.json").write_text(json.dumps(meta))
    written = (run / "profile.json").stat().st_mtime_ns
    assert run_cli(argv).code == 0
    assert (run / "profile.json").stat().st_mtime_ns == written
    other = run_cli([*argv[:-2], "--budget", "100", "--device", "cpu"])  # other settings: refused
    assert other.code != 0 and "differs in: config" in other.stderr
