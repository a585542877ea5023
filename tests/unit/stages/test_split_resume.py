"""An interrupted split resumes at the first unfinished layer and gives the same partition."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

import babelmoe.experts.kmeans as kmeans
from babelmoe.experts.partition import SplitConfig
from babelmoe.models.loading import LoadedModel, model_identity
from babelmoe.stages.split import STATE_DIR, run_split
from babelmoe.testing import tiny_model


def _loaded() -> LoadedModel:
    model = tiny_model("llama", num_hidden_layers=4)
    return LoadedModel(model=model, tokenizer=None, identity=model_identity(model, "tiny"))


def test_split_resumes_after_an_interruption(tmp_path, monkeypatch):
    config = SplitConfig(n_experts=8, max_iter=5)
    reference = tmp_path / "reference"
    run_split(config, reference, model=_loaded())

    real = kmeans.balanced_kmeans
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # layers 0 and 1 finish, layer 2 is interrupted
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    resumed = tmp_path / "resumed"
    monkeypatch.setattr(kmeans, "balanced_kmeans", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_split(config, resumed, model=_loaded())
    assert (resumed / STATE_DIR).is_dir() and not (resumed / "partition.json").exists()

    calls.clear()
    monkeypatch.setattr(
        kmeans, "balanced_kmeans", lambda *a, **k: (calls.append(1), real(*a, **k))[1]
    )
    run_split(config, resumed, model=_loaded())
    assert len(calls) == 2  # only layers 2 and 3 were clustered again
    assert not (resumed / STATE_DIR).exists()
    a = load_file(str(reference / "partition.safetensors"))["labels"]
    b = load_file(str(resumed / "partition.safetensors"))["labels"]
    assert torch.equal(a, b)
