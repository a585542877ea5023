"""``torchrun --nproc_per_node 2 -m babelmoe.cli profile`` on CPU (gloo) writes the same profile
as a one-process run: the command-line path of data-parallel profiling, end to end."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from tests.cli_helpers import PROFILE_ARGS, REPO, run_cli, tiny_checkpoint, tiny_corpus, tiny_run


@pytest.mark.timeout(400)
def test_two_process_torchrun_profile_equals_one_process(tmp_path_factory, tmp_path):
    model, corpus = tiny_checkpoint(tmp_path_factory), tiny_corpus(tmp_path_factory)
    single = tiny_run(tmp_path_factory)  # split + one-process profile
    parallel = tmp_path / "parallel"
    parallel.mkdir()
    for name in ("partition.safetensors", "partition.json"):
        shutil.copy(single / name, parallel / name)
    argv = [
        "profile",
        parallel,
        "--model",
        model,
        "--corpus",
        corpus,
        *PROFILE_ARGS,
        "--batch-size",
        "1",
        "--device",
        "cpu",
    ]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "babelmoe.cli",
            *map(str, argv),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The one-process reference with the same batch size (the batches must be the same).
    reference = tmp_path / "reference"
    reference.mkdir()
    for name in ("partition.safetensors", "partition.json"):
        shutil.copy(single / name, reference / name)
    result = run_cli([*argv[:1], reference, *argv[2:]])
    assert result.code == 0, result.stderr
    a = load_file(str(parallel / "profile.safetensors"))
    b = load_file(str(reference / "profile.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] == b[key]).all(), key
    assert not (parallel / ".profile_state").exists()
