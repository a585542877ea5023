"""How many threads a CPU-side pool may use: the cores this process is allowed to run on."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The CPU cores this process may use (its affinity mask; all cores where there is none)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
