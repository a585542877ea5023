"""How many threads a CPU-side pool may use: the cores this process is allowed to run on."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The CPU cores this process may use (its affinity mask; all cores where there is none)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpu_threads() -> int:
    """Threads torch's CPU kernels should use: ``OMP_NUM_THREADS`` when the user set it, else
    the cores this process may use (``usable_cores``). torch's own default counts the machine's
    cores, which a CPU affinity mask (taskset, a container's cpuset, a batch scheduler) can
    exceed: threads spinning on cores they may not run on multiply a forward's time."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) >= 1:
        return int(value)
    return usable_cores()


def use_usable_cores() -> int:
    """Cap torch's intra-op threads at ``cpu_threads()`` (for work on the CPU); returns the
    number in use. Never raises it: a lower number set on purpose stays (a notebook's choice,
    or a forked process, whose inherited OpenMP pool would hang with more than one thread)."""
    import torch

    threads = cpu_threads()
    if torch.get_num_threads() > threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()
