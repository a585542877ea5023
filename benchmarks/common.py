"""Helpers shared by the benchmark scripts: timing on CPU or CUDA, table printing."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import torch


def cli_env(root: object) -> dict[str, str]:
    """The environment for a babelmoe subprocess: this tree first on PYTHONPATH, the caller's
    entries (e.g. packages carried to a device machine) kept after it."""
    return {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(
    fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 1
) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``fn`` after ``warmup`` calls (synchronised)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def peak_memory(device: torch.device, fn: Callable[[], object]) -> int | None:
    """Peak bytes allocated on a CUDA device while running ``fn`` (None on CPU)."""
    if device.type != "cuda":
        fn()
        return None
    sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    sync(device)
    return torch.cuda.max_memory_allocated(device)


def print_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"
