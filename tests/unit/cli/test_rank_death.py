"""A rank dying mid-run under ``torchrun`` (gloo on CPU): the other rank stops with one line
naming the dead rank, no profile is written, the checkpoints refuse another number of ranks,
and a re-run on as many ranks resumes from them to the counts of an uninterrupted run."""

from __future__ import annotations

import subprocess

import pytest
from safetensors.torch import load_file

from tests.cli_helpers import (
    PROFILE_ARGS,
    copy_partition,
    run_cli,
    tiny_checkpoint,
    tiny_corpus,
    tiny_run,
)
from tests.cli_helpers import torchrun as cli_torchrun


def torchrun(module: str, argv: list, env: dict | None = None) -> subprocess.CompletedProcess:
    return cli_torchrun(module, argv, {"BABELMOE_DIST_TIMEOUT": "60", **(env or {})})


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_rank_killed_mid_profile_stops_the_job_and_the_rerun_resumes(tmp_path_factory, tmp_path):
    model, corpus = tiny_checkpoint(tmp_path_factory), tiny_corpus(tmp_path_factory)
    single = tiny_run(tmp_path_factory)
    run = copy_partition(single, tmp_path / "run")
    argv = ["profile", run, "--model", model, "--corpus", corpus, *PROFILE_ARGS,
            "--batch-size", "1", "--checkpoint-every", "1", "--device", "cpu"]  # fmt: skip

    died = torchrun("tests.rank_dies", argv, {"BABELMOE_TEST_DIE_RANK": "1"})
    assert died.returncode != 0, died.stderr[-3000:]
    assert "Traceback" not in "\n".join(
        line for line in died.stderr.splitlines() if "babelmoe" in line
    )
    errors = [line for line in died.stderr.splitlines() if line.startswith("babelmoe: error:")]
    assert errors, died.stderr[-3000:]
    assert all(line.startswith("babelmoe: error: rank 0 of 2 stopped") for line in errors), errors
    assert any("rank 1 died" in line for line in errors), errors
    assert not (run / "profile.json").exists() and not (run / "profile.safetensors").exists()
    assert (run / ".profile_state" / "rank1-of2" / "state-b.json").is_file()

    # One process may not silently start over beside the two ranks' checkpoints.
    refused = run_cli(argv)
    assert refused.code == 2
    assert "written by 2 rank(s), and this run has 1" in refused.stderr
    assert "torchrun --nproc_per_node 2" in refused.stderr

    resumed = torchrun("babelmoe.cli", argv)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from batch" in resumed.stderr
    assert not (run / ".profile_state").exists()

    reference = copy_partition(single, tmp_path / "reference")
    result = run_cli([argv[0], reference, *argv[2:]])
    assert result.code == 0, result.stderr
    a = load_file(str(run / "profile.safetensors"))
    b = load_file(str(reference / "profile.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] == b[key]).all(), key
