"""The architecture table: every family found through one code path, surgery exact, MoE refused."""

from __future__ import annotations

import json

import pytest
import torch

from babelmoe.errors import BabelmoeError
from babelmoe.models.architectures import (
    ARCHITECTURES,
    Architecture,
    register_architecture,
    resolve_architecture,
)
from babelmoe.models.ffn import ffns
from babelmoe.testing import TINY, make_config, tiny_model

DENSE = [t for t in TINY if t != "mixtral"]
GATED = {
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "gemma",
    "gemma2",
    "gemma3_text",
    "phi3",
    "olmo",
    "olmo2",
}


def _logits(model, ids):
    with torch.no_grad():
        return model(ids).logits


def _h_zeroing(model, drop: dict[int, torch.Tensor]):
    """Forward pre-hooks that zero FFN neurons ``drop[layer]`` (the masked dense model)."""
    handles = []
    for ffn in ffns(model):
        if ffn.layer in drop:

            def hook(_m, args, idx=drop[ffn.layer]):
                h = args[0].clone()
                h[..., idx] = 0
                return (h,)

            handles.append(ffn.down.register_forward_pre_hook(hook))
    return handles


@pytest.mark.parametrize("model_type", DENSE)
def test_every_family_is_found_and_surgery_is_exact(model_type):
    model = tiny_model(model_type, dtype=torch.float64)
    layers = ffns(model)
    assert len(layers) == 2
    width = layers[0].width
    hidden = model.config.get_text_config().hidden_size
    assert layers[0].up_rows().shape == (width, hidden)
    assert (layers[0].gate_rows() is not None) == (model_type in GATED)
    ids = torch.randint(3, 100, (2, 9), generator=torch.Generator().manual_seed(0))
    dense = _logits(model, ids)

    # A permutation of the neurons leaves the function unchanged.
    perm = torch.randperm(width, generator=torch.Generator().manual_seed(1))
    for ffn in layers:
        ffn.select_neurons(perm)
    torch.testing.assert_close(_logits(model, ids), dense, rtol=1e-10, atol=1e-10)
    for ffn in layers:
        ffn.select_neurons(torch.argsort(perm))

    # Keeping a subset equals the dense model with the other neurons zeroed.
    keep = torch.sort(
        torch.randperm(width, generator=torch.Generator().manual_seed(2))[: width * 3 // 4]
    ).values
    dropped = torch.tensor(sorted(set(range(width)) - set(keep.tolist())))
    handles = _h_zeroing(model, {0: dropped, 1: dropped})
    masked = _logits(model, ids)
    for handle in handles:
        handle.remove()
    for ffn in layers:
        ffn.select_neurons(keep)
    assert all(f.width == keep.numel() for f in ffns(model))
    torch.testing.assert_close(_logits(model, ids), masked, rtol=1e-10, atol=1e-10)


def test_native_moe_is_refused():
    with pytest.raises(BabelmoeError, match="already a mixture-of-experts"):
        resolve_architecture(make_config("mixtral"))


def test_unknown_architecture_is_refused_with_the_fix():
    class Config:
        model_type = "my_new_lm"

    with pytest.raises(BabelmoeError, match=r"unknown architecture 'my_new_lm'.*register"):
        resolve_architecture(Config())


def test_users_register_architectures_without_editing_the_package(tmp_path, monkeypatch):
    class Config:
        model_type = "my_llama_fork"

    path = tmp_path / "arch.json"
    path.write_text(
        json.dumps(
            {
                "my_llama_fork": {
                    "layers": "model.layers",
                    "mlp": "mlp",
                    "up": "up_proj",
                    "gate": "gate_proj",
                    "down": "down_proj",
                }
            }
        )
    )
    monkeypatch.setenv("BABELMOE_ARCHITECTURES", str(path))
    try:
        arch = resolve_architecture(Config())
        assert arch.layers == ("model.layers",) and arch.gated
        register_architecture(
            "my_other_fork", Architecture(layers=("x.layers",), mlp="ffn", up="w1", down="w2")
        )
        assert not ARCHITECTURES["my_other_fork"].gated
    finally:
        ARCHITECTURES.pop("my_llama_fork", None)
        ARCHITECTURES.pop("my_other_fork", None)


def test_bad_architecture_file_is_one_clear_error(tmp_path):
    from babelmoe.models.architectures import register_from_file

    bad = tmp_path / "a.json"
    bad.write_text(
        json.dumps({"x": {"layers": "l", "mlp": "m", "up": "u", "down": "d", "typo": 1}})
    )
    with pytest.raises(BabelmoeError, match="unknown architecture field"):
        register_from_file(bad)
    with pytest.raises(BabelmoeError, match="no such architectures file"):
        register_from_file(tmp_path / "missing.json")
