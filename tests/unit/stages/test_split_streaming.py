"""`babelmoe split` of a local safetensors folder streams its layers; the artifact is the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import babelmoe.experts.kmeans as kmeans
import babelmoe.models.loading as loading
import babelmoe.stages.split as split_stage
from babelmoe.experts.partition import Source, SplitConfig, weights_sha256
from babelmoe.models.loading import ModelSpec, load_model
from babelmoe.stages.split import STATE_DIR, run_split
from babelmoe.testing import byte_tokenizer, make_config, random_model


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama checkpoint (byte tokenizer) whose safetensors are cut into several shards."""
    path = tmp_path_factory.mktemp("ckpt")
    tokenizer = byte_tokenizer()
    config = make_config(
        "llama", vocab_size=len(tokenizer), num_hidden_layers=3, intermediate_size=96
    )
    random_model(config, seed=5).save_pretrained(path, max_shard_size="40KB")
    tokenizer.save_pretrained(path)
    assert (path / "model.safetensors.index.json").is_file()
    return path


def no_loading(spec: ModelSpec) -> None:
    raise AssertionError("the model was loaded")


def read(out: Path) -> tuple[torch.Tensor, dict]:
    labels = load_file(str(out / "partition.safetensors"))["labels"]
    return labels, json.loads((out / "partition.json").read_text())


@pytest.mark.parametrize("source", ["up", "both"])
def test_streamed_split_equals_the_loaded_split(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: Source
) -> None:
    spec = ModelSpec(source=str(folder), device="cpu")
    config = SplitConfig(n_experts=8, max_iter=5, source=source)
    loaded = load_model(spec)
    run_split(config, tmp_path / "loaded", model=loaded)
    monkeypatch.setattr(loading, "load_model", no_loading)
    run_split(config, tmp_path / "streamed", model=spec)
    a, meta_a = read(tmp_path / "loaded")
    b, meta_b = read(tmp_path / "streamed")
    assert torch.equal(a, b)
    for key in ("model", "weights_sha256", "partition_sha256", "inertia", "config"):
        assert meta_a[key] == meta_b[key], key
    assert meta_b["weights_sha256"] == weights_sha256(loaded.model, source)
    # The artifact the loaded path wrote is recognised as the same partition.
    assert (
        run_split(config, tmp_path / "loaded", model=spec) == tmp_path / "loaded" / "partition.json"
    )


def test_streamed_split_in_bfloat16_hashes_like_the_loaded_model(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = ModelSpec(source=str(folder), device="cpu", dtype="bfloat16")
    config = SplitConfig(n_experts=8, max_iter=5)
    loaded = load_model(spec)
    monkeypatch.setattr(loading, "load_model", no_loading)
    run_split(config, tmp_path, model=spec)
    _, meta = read(tmp_path)
    assert meta["weights_sha256"] == weights_sha256(loaded.model, "up")


def test_streamed_split_resumes(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = ModelSpec(source=str(folder), device="cpu")
    config = SplitConfig(n_experts=8, max_iter=5)
    run_split(config, tmp_path / "reference", model=spec)
    real = kmeans.balanced_kmeans
    calls: list[int] = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # layer 0 finishes, layer 1 is interrupted
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(kmeans, "balanced_kmeans", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_split(config, tmp_path / "resumed", model=spec)
    assert (tmp_path / "resumed" / STATE_DIR).is_dir()
    calls.clear()
    monkeypatch.setattr(
        kmeans, "balanced_kmeans", lambda *a, **k: (calls.append(1), real(*a, **k))[1]
    )
    run_split(config, tmp_path / "resumed", model=spec)
    assert len(calls) == 2  # layers 1 and 2
    assert torch.equal(read(tmp_path / "reference")[0], read(tmp_path / "resumed")[0])


def test_other_sources_are_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert split_stage._streamed(ModelSpec(), SplitConfig()) is None  # the default model
    assert split_stage._streamed(ModelSpec(source="org/model"), SplitConfig()) is None  # hub id
    assert split_stage._streamed(ModelSpec(source=str(tmp_path / "m.gguf")), SplitConfig()) is None
