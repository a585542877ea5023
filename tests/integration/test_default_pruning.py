"""Prune the real default model for English, reload the uniform-width checkpoint in a fresh
process with plain transformers, and get the same held-out perplexity (issue 5)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLI = [sys.executable, "-m", "babelmoe.cli"]


def _ok(argv: list) -> None:
    proc = subprocess.run([*CLI, *map(str, argv)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_pruned_checkpoint_reloads_with_plain_transformers(tmp_path):
    run, pruned, evaluated = tmp_path / "run", tmp_path / "pruned", tmp_path / "eval"
    _ok(["split", "--out", run, "--experts", "64"])
    _ok(["profile", run, "--languages", "en", "--budget", "800"])
    _ok(
        ["prune", run, "--method", "sort-per-layer", "--ratio", "0.25", "-l", "en", "--out", pruned]
    )
    config = json.loads((pruned / "config.json").read_text())
    assert config["intermediate_size"] == 1536  # 2048 - 25% of 64 experts x 32 neurons
    record = json.loads((pruned / "babelmoe_pruning.json").read_text())
    assert record["method"] == "sort-per-layer" and record["ratio"] == 0.25
    _ok(["evaluate", pruned, "--run", run, "--languages", "en", "--out", evaluated])
    ours = json.loads((evaluated / "perplexity.en.json").read_text())

    script = textwrap.dedent(f"""
        import json, torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from babelmoe.evaluate.perplexity import perplexity
        from babelmoe.profile.artifact import load_profile
        from babelmoe.stages.heldout import heldout_documents
        model = AutoModelForCausalLM.from_pretrained("{pruned}", dtype=torch.float32).eval()
        tokenizer = AutoTokenizer.from_pretrained("{pruned}")
        docs = heldout_documents(load_profile("{run}"))
        texts = [d.text for d in next(iter(docs.values()))]
        print(json.dumps({{"ppl": perplexity(model, tokenizer, texts).ppl}}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = json.loads(proc.stdout.strip().splitlines()[-1])["ppl"]
    ppl = ours["metrics"]["ppl"] if "metrics" in ours else ours["ppl"]
    assert fresh == pytest.approx(ppl, rel=1e-6), (fresh, ppl)
    assert 1 < ppl < 1000
