"""Smoke run of ``benchmarks/bench_run.py`` at a tiny shape on CPU: ``babelmoe run`` with its
defaults on a written checkpoint and nine-language corpus, per-stage times, one model load for
every seed, and the references over the sweep's own batches. No timing is asserted (CPU)."""

from __future__ import annotations

import pytest

from tests.cli_helpers import run_benchmark


@pytest.mark.slow
def test_bench_run_times_the_main_job_and_its_references(tmp_path):
    result, r = run_benchmark("bench_run.py", tmp_path, "--budget", "1000")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "babelmoe run (tiny-llama, cpu)" in result.stdout and "switching:" in result.stdout
    run = r["run"]
    assert run["model_loads"] == 1  # the extra seeds share the loaded model
    assert {"load", "split", "profile", "split seed 1", "profile seed 2", "sweep"} <= set(
        run["stages_s"]
    )
    sweep = run["sweep"]
    assert sweep["configurations"] == 1 + 3 * (3 + 2 * 9) and run["sweep_rows"] == 9 + 3 * (
        3 * 9 + 2 * 9
    )
    ref = r["sweep_reference"]
    assert ref["tokens"] == sweep["eval_tokens"]  # the reference runs the sweep's own tokens
    assert ref["switching"]["switch_s"] < 0.1
