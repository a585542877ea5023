"""A model's weights are hashed once while they stay unchanged (the split of every seed, every
partition check)."""

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
    for _ in range(3):  # the split hashed them
        check_partition_fits(partition, model)
    assert len(calls) == 0
    with torch.no_grad():  # an in-place change of a clustered weight: hashed again, refused
        ffns(model)[1].up_rows().mul_(2)
    with pytest.raises(BabelmoeError, match="made for other weights"):
        check_partition_fits(partition, model)
    assert len(calls) == 1
    with pytest.raises(BabelmoeError, match="made for other weights"):  # still refused, from
        check_partition_fits(partition, model)  # the changed weights' remembered digest
    assert len(calls) == 1


def test_splitting_seeds_and_checking_hash_once(monkeypatch):
    model = tiny_model("llama")
    calls = _counting(monkeypatch)
    partitions = [split_model(model, SplitConfig(n_experts=8, seed=s)) for s in (0, 1, 2)]
    for partition in partitions:
        check_partition_fits(partition, model)
    assert len(calls) == 1
    assert len({p.meta["weights_sha256"] for p in partitions}) == 1


def test_inference_tensor_weights_are_hashed_every_time(monkeypatch):
    model = tiny_model("llama")
    partition = split_model(model, SplitConfig(n_experts=8))
    with torch.inference_mode():  # as the profile's expert layout used to leave them
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


def _counting(monkeypatch) -> list:
    calls: list = []
    real = partition_module.weights_sha256
    monkeypatch.setattr(
        partition_module, "weights_sha256", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    return calls


def test_a_match_is_kept_across_the_expert_layout(monkeypatch):
    from babelmoe.experts.moe_view import expert_layout

    model = tiny_model("llama")
    partition = split_model(model, SplitConfig(n_experts=8))
    calls = _counting(monkeypatch)
    check_partition_fits(partition, model)
    with torch.inference_mode(), expert_layout(model, partition):  # as the profile enters it
        model(torch.tensor([[1, 2, 3]]))
    assert not any(p.is_inference() for p in model.parameters())
    check_partition_fits(partition, model)  # the same weights again: not hashed
    assert len(calls) == 0
    with torch.no_grad():  # a later change is still seen
        ffns(model)[0].up_rows().mul_(2)
    with pytest.raises(BabelmoeError, match="made for other weights"):
        check_partition_fits(partition, model)
    assert len(calls) == 1


def test_a_change_inside_the_layout_or_an_error_is_not_carried(monkeypatch):
    from babelmoe.experts.moe_view import expert_layout

    model = tiny_model("llama")
    partition = split_model(model, SplitConfig(n_experts=8))
    calls = _counting(monkeypatch)
    check_partition_fits(partition, model)
    with expert_layout(model, partition), torch.no_grad():
        ffns(model)[1].up_rows().mul_(2)  # changed while reordered
    with pytest.raises(BabelmoeError, match="made for other weights"):
        check_partition_fits(partition, model)
    assert len(calls) == 1

    model = tiny_model("llama")  # the same weights, another model object
    check_partition_fits(partition, model)
    assert len(calls) == 2
    with pytest.raises(RuntimeError), expert_layout(model, partition):
        raise RuntimeError("stopped")
    check_partition_fits(partition, model)  # not carried after an error: hashed again, fits
    assert len(calls) == 3
