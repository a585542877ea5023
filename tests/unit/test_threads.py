"""CPU threads: torch uses the cores the process may use, or OMP_NUM_THREADS when set."""

from __future__ import annotations

import torch

from babelmoe import threads


def test_torch_threads_follow_the_affinity_mask_unless_omp_num_threads_is_set(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0}, raising=False)
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert threads.use_usable_cores() == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert threads.cpu_threads() == 2
        # a lower number set on purpose stays (a forked child's single thread, a notebook's)
        assert threads.use_usable_cores() == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "nonsense")
        assert threads.cpu_threads() == 1
    finally:
        torch.set_num_threads(before)
