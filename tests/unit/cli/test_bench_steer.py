"""Smoke run of ``benchmarks/bench_steer.py`` and ``benchmarks/diag_steer.py`` at a tiny shape on
CPU: ``babelmoe steer`` with its defaults against the plain model in a fresh process, and the
per-batch diagnostic on the run it leaves. No timing is asserted (CPU)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.cli_helpers import REPO, run_benchmark


@pytest.mark.slow
def test_bench_steer_and_its_diagnostic(tmp_path):
    result, r = run_benchmark("bench_steer.py", tmp_path, "--tokens", "1800", "--repeats", "1")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    (round_,) = r["repeats"]
    assert round_["reference"]["models"] == 1 + 9 + 3  # dense, each language's set, 3 random
    for phase in ("silencing_s", "steering_s"):
        assert round_["command"][phase] > 0 and round_["reference"][phase] > 0
        assert r[phase]["ratio"] == pytest.approx(
            round_["command"][phase] / round_["reference"][phase]
        )
    work, out = tmp_path / "work", tmp_path / "diag.json"
    diag = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "diag_steer.py"), "--run", str(work / "run"),
         "--model", str(work / "model"), "--device", "cpu", "--out", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert diag.returncode == 0, diag.stdout[-2000:] + diag.stderr[-3000:]
    totals = json.loads(out.read_text())
    assert totals["generate_plain_s"] > 0 and totals["generate_hooked_s"] > 0
    assert diag.stdout.count("batch of ") == 6  # 384 continuations, 64 a batch
