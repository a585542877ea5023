"""check_partition_fits hashes a model's weights once while they stay unchanged."""

from __future__ import annotations

import pytest
import torch

from babelmoe.errors import BabelmoeError
from babelmoe.experts import partition as partition_module
from babelmoe.experts.partition import SplitConfig, check_partition_fits, split_model
from babelmoe.models.ffn import ffns
from babelmoe.testing import tiny_model


def test_weights_are_hashed_once_until_one_changes(monkeypatch):
    model = tiny_model("llama")
    partition = split_model(model, SplitConfig(n_experts=8))
    calls = []
    real = partition_module.weights_sha256

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(partition_module, "weights_sha256", counting)
    for _ in range(3):
        check_partition_fits(partition, model)
    assert len(calls) == 1
    with torch.no_grad():  # an in-place change of a clustered weight: hashed again, refused
        ffns(model)[1].up_rows().mul_(2)
    with pytest.raises(BabelmoeError, match="made for other weights"):
        check_partition_fits(partition, model)
    assert len(calls) == 2
    with pytest.raises(BabelmoeError, match="made for other weights"):  # a mismatch is not kept
        check_partition_fits(partition, model)
    assert len(calls) == 3


def test_inference_tensor_weights_are_hashed_every_time(monkeypatch):
    model = tiny_model("llama")
    partition = split_model(model, SplitConfig(n_experts=8))
    with torch.inference_mode():  # as the profile's expert layout leaves them
        for param in model.parameters():
            param.data = param.data.clone()
    calls = []
    real = partition_module.weights_sha256
    monkeypatch.setattr(
        partition_module, "weights_sha256", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    check_partition_fits(partition, model)
    check_partition_fits(partition, model)
    assert len(calls) == 2
