"""Data-parallel profiling (gloo, 2 CPU processes) gives exactly the one-process counts."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from babelmoe.profile.batches import language_sequences, make_batches
from babelmoe.profile.core import Scoring, profile_batches
from babelmoe.testing import balanced_partition, tiny_model


def _inputs():
    model = tiny_model("llama", dtype=torch.float64)
    part = balanced_partition(2, 64, 8, seed=5)
    g = torch.Generator().manual_seed(9)
    docs = [
        [torch.randint(3, 120, (n,), generator=g).tolist() for n in lens]
        for lens in [(30, 12, 7), (25, 40)]
    ]
    seqs = [s for lang, d in enumerate(docs) for s in language_sequences(d, lang, 3, 1, 16, False)]
    return model, part, make_batches(seqs, 2, 0)


def _worker(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        torch.set_num_threads(1)
        model, part, batches = _inputs()
        acc = profile_batches(
            model, part, batches, 2, 3, Scoring(), rank=rank, world_size=world_size
        )
        acc.all_reduce()
        if rank == 0:
            torch.save(acc.state(), out)
        dist.barrier()  # as the CLI does: every rank done before the group is torn down
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(300)
def test_two_gloo_ranks_match_one_process(tmp_path):
    out = str(tmp_path / "state.pt")
    mp.spawn(_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    parallel = torch.load(out)
    model, part, batches = _inputs()
    single = profile_batches(model, part, batches, 2, 3, Scoring()).state()
    assert len(batches) > 2
    for name in ("counts", "tokens", "score_sums"):
        assert torch.equal(parallel[name], single[name]), name
