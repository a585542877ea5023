"""The same command twice gives byte-identical artifacts on CPU (split and profile)."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import PROFILE_ARGS, SPLIT_ARGS, run_cli, tiny_checkpoint, tiny_corpus

# What may differ between two identical runs: wall-clock time.
TIMINGS = ("seconds",)
# The checksum of the JSON covers the timings, so it differs with them.
DERIVED = ("meta_sha256",)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Split + profile twice, into two folders, with identical commands."""
    model, corpus = tiny_checkpoint(tmp_path_factory), tiny_corpus(tmp_path_factory)
    runs = [tmp_path_factory.mktemp("same") for _ in range(2)]
    for run in runs:
        for argv in (
            ["split", "--model", model, "--out", run, *SPLIT_ARGS, "--seed", "3"],
            ["profile", run, "--model", model, "--corpus", corpus, *PROFILE_ARGS],
        ):
            result = run_cli(argv)
            assert result.code == 0, result.stderr
    return runs


@pytest.mark.parametrize("artifact", ["partition", "profile"])
def test_the_same_command_twice_gives_identical_artifacts(two_runs, artifact):
    a, b = two_runs
    tensors = f"{artifact}.safetensors"
    assert (a / tensors).read_bytes() == (b / tensors).read_bytes()
    meta_a, meta_b = (json.loads((r / f"{artifact}.json").read_text()) for r in (a, b))
    for meta in (meta_a, meta_b):
        for key in (*TIMINGS, *DERIVED):
            meta.pop(key, None)
    assert meta_a == meta_b
