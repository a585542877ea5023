"""Streaming FFN input weights from safetensors shards equals reading them from the loaded model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from safetensors import safe_open as _real_safe_open

from babelmoe.errors import BabelmoeError
from babelmoe.models import streaming
from babelmoe.models.ffn import ffns
from babelmoe.models.loading import model_identity
from babelmoe.models.streaming import (
    StreamedCheckpoint,
    checkpoint_files,
    is_streamable,
    stream_ffns,
)
from babelmoe.testing import tiny_model


def save(model: torch.nn.Module, folder: Path, shard: str | None = None) -> Path:
    kwargs = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(folder, **kwargs)
    return folder


def load(folder: Path, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype).eval()


@pytest.fixture(scope="module")
def sharded_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 3 layers, wider FFN; 40 KB shards: every layer's tensors spread over several files.
    model = tiny_model("llama", num_hidden_layers=3, intermediate_size=96, seed=3)
    return save(model, tmp_path_factory.mktemp("llama"), shard="40KB")


def test_sharded_llama_matches_the_loaded_model(sharded_llama: Path) -> None:
    assert (sharded_llama / "model.safetensors.index.json").is_file()
    files = checkpoint_files(sharded_llama)
    assert files is not None and len(set(files.values())) >= 3
    assert is_streamable(sharded_llama)
    model = load(sharded_llama)
    streamed = list(stream_ffns(sharded_llama, ("up", "gate")))
    assert [s.layer for s in streamed] == [0, 1, 2]
    for ffn, got in zip(ffns(model), streamed, strict=True):
        assert got.width == ffn.width == 96
        assert torch.equal(got.up_rows(), ffn.up_rows())
        gate = got.gate_rows()
        assert gate is not None and torch.equal(gate, ffn.gate_rows())
    checkpoint = StreamedCheckpoint.open(sharded_llama)
    assert checkpoint.identity("x") == model_identity(model, "x")
    later = list(checkpoint.ffns(start=2))  # a resumed split reads only the layers left
    assert [s.layer for s in later] == [2]
    assert torch.equal(later[0].up_rows(), streamed[2].up_rows())


def test_cast_gives_the_loaded_models_bytes(sharded_llama: Path) -> None:
    model = load(sharded_llama, torch.bfloat16)
    for ffn, got in zip(ffns(model), stream_ffns(sharded_llama, dtype=torch.bfloat16), strict=True):
        assert got.up_rows().dtype == torch.bfloat16
        assert torch.equal(got.up_rows().view(torch.int16), ffn.up_rows().view(torch.int16))


class _Spy:
    """safe_open that records the names read."""

    read: ClassVar[list[str]] = []

    def __init__(self, path: str, framework: str) -> None:
        self._inner = _real_safe_open(path, framework=framework)

    def __enter__(self) -> _Spy:
        self._inner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inner.__exit__(*exc)

    def keys(self) -> list[str]:
        return list(self._inner.keys())

    def get_tensor(self, name: str) -> torch.Tensor:
        _Spy.read.append(name)
        return self._inner.get_tensor(name)

    def get_slice(self, name: str) -> Any:  # shapes only (the header): no tensor data read
        return self._inner.get_slice(name)


def test_reads_only_the_asked_tensors(sharded_llama: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors

    monkeypatch.setattr(safetensors, "safe_open", _Spy)
    _Spy.read = []
    rows = [s.up_rows() for s in stream_ffns(sharded_llama, ("up",))]
    assert len(rows) == 3
    assert _Spy.read == [f"model.layers.{i}.mlp.up_proj.weight" for i in range(3)]
    _Spy.read = []
    layer = next(iter(stream_ffns(sharded_llama, ("gate",))))
    assert _Spy.read == ["model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.gate_proj.weight"]
    with pytest.raises(RuntimeError):
        layer.up_rows()  # not asked for


@pytest.mark.parametrize("model_type", ["gpt2", "phi3", "qwen2"])
def test_other_layouts_single_file(model_type: str, tmp_path: Path) -> None:
    # gpt2: Conv1D weights stored [in, out]; phi3: fused gate+up in one tensor.
    folder = save(tiny_model(model_type, seed=1), tmp_path)
    assert (folder / "model.safetensors").is_file()
    assert not (folder / "model.safetensors.index.json").exists()
    model = load(folder)
    gated = ffns(model)[0].gate_rows() is not None
    parts = ("up", "gate") if gated else ("up",)
    for ffn, got in zip(ffns(model), stream_ffns(folder, parts), strict=True):
        assert torch.equal(got.up_rows(), ffn.up_rows())
        if gated:
            assert torch.equal(got.gate_rows(), ffn.gate_rows())
        else:
            assert got.gate_rows() is None
    assert StreamedCheckpoint.open(folder).identity("m") == model_identity(model, "m")


def test_gate_of_an_ungated_model_is_refused(tmp_path: Path) -> None:
    folder = save(tiny_model("gpt2"), tmp_path)
    with pytest.raises(BabelmoeError) as info:
        list(stream_ffns(folder, ("gate",)))
    assert info.value.fix == "use source up" and info.value.settings == ("source",)  # CLI: --source


def test_not_streamable(tmp_path: Path, sharded_llama: Path) -> None:
    assert not is_streamable("meta-llama/Llama-3.1-8B")  # a hub id
    assert not is_streamable(tmp_path / "model.gguf")
    assert not is_streamable(tmp_path)  # empty folder
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert not is_streamable(tmp_path)  # no weights
    quantised = tmp_path / "q"
    quantised.mkdir()
    for name in ("config.json", "model.safetensors.index.json"):
        text = (sharded_llama / name).read_text()
        if name == "config.json":
            text = json.dumps({**json.loads(text), "quantization_config": {"bits": 4}})
        (quantised / name).write_text(text)
    assert not is_streamable(quantised)
    with pytest.raises(BabelmoeError):
        list(stream_ffns(tmp_path))


def test_missing_shard_or_layer_is_a_clear_error(tmp_path: Path, sharded_llama: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(sharded_llama, broken)
    files = checkpoint_files(broken)
    assert files is not None
    shard = files["model.layers.2.mlp.up_proj.weight"]
    shard.unlink()
    with pytest.raises(BabelmoeError) as info:
        list(stream_ffns(broken))
    assert shard.name in info.value.problem
    index = json.loads((sharded_llama / "model.safetensors.index.json").read_text())
    del index["weight_map"]["model.layers.1.mlp.gate_proj.weight"]
    (broken / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(BabelmoeError) as info:
        list(stream_ffns(broken, ("gate",)))
    assert "model.layers.1.mlp.gate_proj.weight" in info.value.problem


def test_base_model_prefix_is_recognised() -> None:
    arch = streaming.resolve_architecture(type("C", (), {"model_type": "gpt2"})())
    names = {f"h.{i}.mlp.c_fc.weight" for i in range(2)}
    got = streaming.ffn_tensor_names(arch, names)
    assert got == [{"up": "h.0.mlp.c_fc.weight"}, {"up": "h.1.mlp.c_fc.weight"}]
