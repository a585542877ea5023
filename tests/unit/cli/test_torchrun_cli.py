"""``torchrun --nproc_per_node 2 -m babelmoe.cli profile`` on CPU (gloo) writes the same profile
as a one-process run: the command-line path of data-parallel profiling, end to end."""

from __future__ import annotations

import shutil

import pytest
from safetensors.torch import load_file

from tests.cli_helpers import (
    PROFILE_ARGS,
    copy_partition,
    run_cli,
    tiny_checkpoint,
    tiny_corpus,
    tiny_run,
    torchrun,
)


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
    proc = torchrun("babelmoe.cli", argv)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The one-process reference with the same batch size (the batches must be the same).
    reference = copy_partition(single, tmp_path / "reference")
    result = run_cli([*argv[:1], reference, *argv[2:]])
    assert result.code == 0, result.stderr
    a = load_file(str(parallel / "profile.safetensors"))
    b = load_file(str(reference / "profile.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] == b[key]).all(), key
    assert not (parallel / ".profile_state").exists()
