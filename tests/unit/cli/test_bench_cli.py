"""Smoke run of ``benchmarks/bench_cli.py`` at a tiny shape on CPU: it writes a checkpoint and a
nine-language corpus, runs ``babelmoe split`` and ``babelmoe profile`` as a user would, times the
plain forward over the same batches and reports. No timing is asserted here (CPU, 2 cores)."""

from __future__ import annotations

import pytest

from tests.cli_helpers import run_benchmark


@pytest.mark.slow
def test_bench_cli_runs_the_command_and_the_reference(tmp_path):
    result, r = run_benchmark("bench_cli.py", tmp_path, "--tokens", "36000")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "whole command" in result.stdout and "ratios: steady" in result.stdout
    profile = r["profile"]
    assert profile["counted_tokens"] == 9 * 4000  # the budget binds in every language
    assert profile["limit_hits"] == 0 and profile["limit_warnings_in_log"] == 0
    assert 0 <= profile["padding_share"] < 0.5
    assert profile["wall_s"] > profile["load_s"] > 0
    assert r["reference"]["batches"] == profile["batches"]  # the same batches
    assert profile["batches"] >= 2 and r["ratios"]["steady"] > 0
    corpus = sorted(p.name for p in (tmp_path / "work" / "corpus-4000").iterdir())
    assert corpus == sorted(
        f"{lang}.txt" for lang in ["en", "fr", "es", "pt", "zh", "ar", "hi", "bn", "ur"]
    )
