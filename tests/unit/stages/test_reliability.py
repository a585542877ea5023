"""Artifacts are atomic and never silently replaced; one writer per folder; interrupted runs
continue; numerical overflow stops with the layer named. (The bad-input catalogue is in
test_bad_inputs.py, the SIGKILL resume test in test_resume.py.)"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import torch
from filelock import FileLock

from babelmoe import artifacts
from babelmoe.errors import BabelmoeError
from babelmoe.stages.profile import STATE_DIR
from babelmoe.testing import write_word_corpus
from tests.cli_helpers import (
    PROFILE_ARGS,
    SPLIT_ARGS,
    run_cli,
    temp_files,
    tiny_checkpoint,
    tiny_corpus,
    tiny_run,
    tree,
)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory), tiny_corpus(tmp_path_factory)


@pytest.fixture
def run(tmp_path_factory, tmp_path) -> Path:
    """A copy of the tiny run folder (partition + profile) made with the ``inputs``."""
    copy = tmp_path / "run"
    shutil.copytree(tiny_run(tmp_path_factory), copy)
    return copy


def one_error_line(result) -> str:
    assert result.code != 0
    assert "Traceback" not in result.stderr
    assert len(result.error_lines) == 1, result.stderr
    assert result.error_lines[0].startswith("babelmoe: error: ")
    return result.error_lines[0]


def profile_argv(run: Path, model: Path, corpus: Path, *extra) -> list:
    return ["profile", run, "--model", model, "--corpus", corpus, *PROFILE_ARGS, *extra]


# --- never overwrite silently ------------------------------------------------------------------


def test_split_keeps_an_identical_partition_refuses_another_and_replaces_it_with_force(
    inputs, tmp_path
):
    model, _ = inputs
    out = tmp_path / "run"
    split = ["split", "--model", model, "--out", out, *SPLIT_ARGS]
    assert run_cli(split).code == 0
    first = tree(out)
    stamp = (out / "partition.json").stat().st_mtime_ns

    assert run_cli(split).code == 0  # the same command: nothing rewritten
    assert (out / "partition.json").stat().st_mtime_ns == stamp

    line = one_error_line(run_cli([*split, "--experts", "2"]))
    assert "already holds a different partition artifact" in line and "--force" in line
    assert tree(out) == first

    assert run_cli([*split, "--experts", "2", "--force"]).code == 0
    assert json.loads((out / "partition.json").read_text())["n_experts"] == 2


def test_profile_keeps_an_identical_profile_refuses_another_and_replaces_it_with_force(inputs, run):
    model, corpus = inputs
    before = tree(run)
    assert run_cli(profile_argv(run, model, corpus)).code == 0  # how the run was made
    assert tree(run) == before

    line = one_error_line(run_cli(profile_argv(run, model, corpus, "--budget", "100")))
    # another budget: other settings and so other tokens
    assert "already holds a different profile artifact (differs in: config, tokens_sha256)" in line
    assert tree(run) == before

    assert run_cli(profile_argv(run, model, corpus, "--budget", "100", "--force")).code == 0
    assert json.loads((run / "profile.json").read_text())["config"]["token_budget"] == 100
    assert {k: v for k, v in tree(run).items() if k.startswith("partition")} == {
        k: v for k, v in before.items() if k.startswith("partition")
    }


def test_every_artifact_names_its_schema_and_what_it_was_made_from(run):
    partition = json.loads((run / "partition.json").read_text())
    profile = json.loads((run / "profile.json").read_text())
    for meta, kind in ((partition, "partition"), (profile, "profile")):
        assert meta["schema_version"] == artifacts.SCHEMA_VERSION
        assert meta["kind"] == kind
        assert len(meta["tensors_sha256"]) == 64
        assert meta["model"]["name"].endswith("llama")
    assert partition["weights_sha256"] and partition["partition_sha256"]
    assert profile["partition_sha256"] == partition["partition_sha256"]
    assert profile["corpus"]["source"] and len(profile["corpus"]["sha256"]) == 64
    assert profile["config"]["token_budget"] == 400


# --- one writer per folder ---------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["split", "profile", "analyse"])
def test_a_second_writer_gets_one_clear_line_and_changes_nothing(stage, inputs, run):
    model, corpus = inputs
    argv = {
        "split": ["split", "--model", model, "--out", run, *SPLIT_ARGS, "--seed", "5"],
        "profile": profile_argv(run, model, corpus, "--budget", "100"),
        "analyse": ["analyse", run, "--bootstrap", "0", "--no-figures"],
    }[stage]
    before = tree(run)
    lock = FileLock(str(run / artifacts.LOCK_FILE), timeout=0)
    with lock:
        line = one_error_line(run_cli(argv))
    assert f"another babelmoe run is writing to {run}" in line
    assert "wait for it to finish" in line
    assert tree(run) == before


def test_run_lock_removes_what_it_created_when_nothing_was_written(tmp_path):
    out = tmp_path / "a" / "b"
    with pytest.raises(BabelmoeError), artifacts.run_lock(out):
        raise BabelmoeError("the stage failed before writing")
    assert not (tmp_path / "a").exists()
    with artifacts.run_lock(out):
        (out / "result.json").write_text("{}")
    assert sorted(p.name for p in out.iterdir()) == [artifacts.LOCK_FILE, "result.json"]


def test_run_lock_clears_temporary_files_of_a_killed_writer(tmp_path):
    (tmp_path / ".profile.x1y2.safetensors.tmp").write_bytes(b"half")
    (tmp_path / "keep.tmp").write_text("not ours")  # not hidden: not an atomic-write temp
    with artifacts.run_lock(tmp_path):
        pass
    assert temp_files(tmp_path) == []
    assert (tmp_path / "keep.tmp").exists()


# --- atomic writes and detection of damage ------------------------------------------------------


def test_a_crash_between_the_two_renames_leaves_no_artifact(tmp_path, monkeypatch):
    tensors = {"x": torch.arange(4)}
    artifacts.save_artifact(tmp_path, "thing", tensors, {"n": 1}, kind="thing")
    real = os.replace

    def crash_after_tensors(src, dst):
        real(src, dst)
        if str(dst).endswith(".safetensors"):
            raise KeyboardInterrupt  # the process dies here

    monkeypatch.setattr(os, "replace", crash_after_tensors)
    with pytest.raises(KeyboardInterrupt):
        artifacts.save_artifact(tmp_path, "thing", {"x": torch.arange(5)}, {"n": 2}, kind="thing")
    monkeypatch.undo()
    # No JSON (the commit marker): the stage sees no artifact and recomputes it, rather than an
    # old JSON beside new tensors.
    assert not artifacts.artifact_exists(tmp_path, "thing")
    with pytest.raises(BabelmoeError, match="no thing artifact"):
        artifacts.load_artifact(tmp_path, "thing", kind="thing")
    assert temp_files(tmp_path) == []


def test_an_artifact_saved_from_loaded_metadata_gets_its_own_checksum(tmp_path):
    artifacts.save_artifact(tmp_path / "a", "thing", {"x": torch.arange(4)}, {}, kind="thing")
    _, meta = artifacts.load_artifact(tmp_path / "a", "thing", kind="thing")
    # meta carries the old checksum, schema and file name; they must not override the new ones
    artifacts.save_artifact(tmp_path / "b", "thing", {"x": torch.arange(9)}, meta, kind="thing")
    tensors, _ = artifacts.load_artifact(tmp_path / "b", "thing", kind="thing")
    assert torch.equal(tensors["x"], torch.arange(9))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:-1]), "truncated or corrupted"),
        (lambda p: p.write_bytes(p.read_bytes() + b"\0"), "truncated or corrupted"),
        (lambda p: p.unlink(), "is missing although"),
    ],
    ids=["truncated", "extended", "deleted"],
)
def test_damaged_tensor_files_are_reported_not_half_read(tmp_path, damage, message):
    artifacts.save_artifact(tmp_path, "thing", {"x": torch.arange(100)}, {}, kind="thing")
    damage(tmp_path / "thing.safetensors")
    with pytest.raises(BabelmoeError, match=message):
        artifacts.load_artifact(tmp_path, "thing", kind="thing")


# --- interrupted runs --------------------------------------------------------------------------


def test_ctrl_c_during_the_final_write_then_a_rerun_resumes_from_the_checkpoint(
    inputs, run, tmp_path, monkeypatch, caplog
):
    """Checkpoints survive an interruption; a re-run with another --checkpoint-every (it does
    not change the counts) resumes from them and gives the uninterrupted run's profile."""
    model, corpus = inputs
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for suffix in (".json", ".safetensors"):
        shutil.copy2(run / f"partition{suffix}", fresh / f"partition{suffix}")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("babelmoe.stages.profile.save_profile", interrupted)
    result = run_cli(profile_argv(fresh, model, corpus, "--checkpoint-every", "2"))
    assert result.code == 130
    assert one_error_line(result).endswith(
        "a re-run of the same command resumes or restarts cleanly"
    )
    assert not artifacts.artifact_exists(fresh, artifacts.PROFILE)
    assert (fresh / STATE_DIR).is_dir()
    monkeypatch.undo()

    with caplog.at_level(logging.INFO, logger="babelmoe"):
        assert run_cli(profile_argv(fresh, model, corpus, "--checkpoint-every", "3")).code == 0
    assert "resuming from batch" in caplog.text
    assert not (fresh / STATE_DIR).exists()
    for name in ("profile.safetensors", "profile.json"):
        assert (fresh / name).read_bytes() == (run / name).read_bytes()


# --- numerics ----------------------------------------------------------------------------------


def test_float16_overflow_stops_with_the_layer_named(tmp_path):
    from safetensors.torch import load_file, save_file

    from babelmoe.testing import save_tiny_checkpoint

    model = Path(save_tiny_checkpoint(str(tmp_path / "hot"), "llama"))
    weights = load_file(str(model / "model.safetensors"))
    for name in ("gate_proj", "up_proj"):  # FFN activations of layer 1 ~ 1e6: inf in float16
        weights[f"model.layers.1.mlp.{name}.weight"] *= 1e4
    save_file(weights, str(model / "model.safetensors"), metadata={"format": "pt"})
    corpus = write_word_corpus(tmp_path / "corpus", docs=4)
    out = tmp_path / "run"
    common = ["--model", model, "--dtype", "float16", "--device", "cpu"]
    assert run_cli(["split", "--out", out, *common, *SPLIT_ARGS]).code == 0
    line = one_error_line(
        run_cli(["profile", out, *common, "--corpus", corpus, *PROFILE_ARGS, "--no-compile"])
    )
    assert "NaN or inf in the FFN activations of layer 1" in line
    assert "--dtype bfloat16 or --dtype float32" in line
    assert not artifacts.artifact_exists(out, artifacts.PROFILE)


def test_study_refuses_a_held_folder_before_loading_the_model(tmp_path, monkeypatch):
    from babelmoe.models.loading import ModelSpec
    from babelmoe.stages import study

    monkeypatch.setattr(
        "babelmoe.models.loading.load_model", lambda spec: pytest.fail("the model was loaded")
    )
    config = study.StudyConfig(languages=("en", "fr", "zh", "ar"), budget=100, n_experts=16)
    lock = FileLock(str(tmp_path / artifacts.LOCK_FILE), timeout=0)
    with lock, pytest.raises(BabelmoeError, match="another babelmoe run is writing to"):
        study.run_study(config, tmp_path, model=ModelSpec(source="default"))
