"""Surgery: a pruned model computes exactly the dense model with those neurons masked, for every
family (gated, non-gated, fused, Conv1D), uniform or not; it saves, and reloads in a fresh
process with stock transformers (uniform) or with ``load_pruned`` (any widths)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from babelmoe.errors import BabelmoeError
from babelmoe.experts.partition import Partition
from babelmoe.models.ffn import ffns
from babelmoe.prune.criteria import PruneConfig, select_experts
from babelmoe.prune.surgery import (
    PRUNING_FILE,
    check_can_write_pruned,
    kept_neurons,
    load_pruned,
    prune_model,
    read_pruning_record,
    save_pruned,
    temporarily_pruned,
)
from babelmoe.testing import balanced_partition, tiny_model

E = 8
GATED = ["llama", "gemma3_text", "phi3"]
NON_GATED = ["gpt2", "gpt_neox", "bloom"]


def setup(
    family: str, uniform: bool, seed: int = 0
) -> tuple[torch.nn.Module, Partition, torch.Tensor]:
    model = tiny_model(family, seed=seed)
    layers = ffns(model)
    partition = balanced_partition(len(layers), layers[0].width, E, seed=seed)
    values = torch.rand(
        len(layers), E, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    if uniform:
        config = PruneConfig(method="sort-per-layer", ratio=0.25, languages=("en",))
    else:
        values[0] /= 10  # layer 0 holds most of the lowest experts
        config = PruneConfig(method="sort", ratio=0.4, languages=("en",))
    drop = select_experts(config, values, (len(layers), E)).drop
    return model, partition, drop


def masked_logits(
    model: torch.nn.Module, partition: Partition, drop: torch.Tensor, ids: torch.Tensor
) -> torch.Tensor:
    """Dense forward with the removed neurons' activations zeroed at the down projection's input."""
    handles = []
    for ffn, keep in zip(ffns(model), kept_neurons(partition, drop), strict=True):
        mask = torch.zeros(ffn.width)
        mask[keep] = 1.0

        def hook(module, args, mask=mask):
            return (args[0] * mask,)

        handles.append(ffn.down.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            return model(ids).logits
    finally:
        for handle in handles:
            handle.remove()


def logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits


IDS = torch.randint(3, 120, (2, 12), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("uniform", [True, False], ids=["uniform", "non-uniform"])
@pytest.mark.parametrize("family", GATED + NON_GATED)
def test_pruned_model_equals_dense_with_neurons_masked(family: str, uniform: bool) -> None:
    model, partition, drop = setup(family, uniform)
    dense = logits(model, IDS)
    expected = masked_logits(model, partition, drop, IDS)
    widths = prune_model(model, partition, drop)
    sizes = partition.sizes()
    assert widths == [
        partition.width - int(sizes[layer][drop[layer]].sum()) for layer in range(len(widths))
    ]
    assert (len(set(widths)) == 1) == uniform
    got = logits(model, IDS)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(got, dense, atol=1e-4)  # the pruning did change the function


def test_temporarily_pruned_restores_the_dense_model_even_on_error() -> None:
    model, partition, drop = setup("llama", uniform=False)
    dense = logits(model, IDS)
    params = [p for p in model.parameters()]
    with (
        pytest.raises(RuntimeError, match="boom"),
        temporarily_pruned(model, partition, drop) as widths,
    ):
        assert widths == [f.width for f in ffns(model)] and min(widths) < partition.width
        torch.testing.assert_close(
            logits(model, IDS), masked_logits_fresh("llama", partition, drop)
        )
        raise RuntimeError("boom")
    assert all(a is b for a, b in zip(params, model.parameters(), strict=True))
    assert all(f.width == partition.width for f in ffns(model))
    assert ffns(model)[0].up.out_features == partition.width
    torch.testing.assert_close(logits(model, IDS), dense, rtol=0, atol=0)


def masked_logits_fresh(family: str, partition: Partition, drop: torch.Tensor) -> torch.Tensor:
    return masked_logits(tiny_model(family), partition, drop, IDS)


def test_selection_for_another_partition_is_refused() -> None:
    _, partition, drop = setup("llama", uniform=True)
    with pytest.raises(BabelmoeError, match="selection has shape"):
        kept_neurons(partition, drop[:, :4])
    with pytest.raises(BabelmoeError, match="partition is for"):
        prune_model(tiny_model("llama", intermediate_size=48), partition, drop)


RECORD = {
    "method": "sort",
    "languages": ["en"],
    "partition_sha256": "x",
    "criterion": {"ratio": 0.25},
}

RELOAD = """
import json, sys, torch
from transformers import AutoModelForCausalLM
ids = torch.tensor(json.loads(sys.argv[1]))
out = {}
for folder in sys.argv[2:]:
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    with torch.no_grad():
        out[folder] = model(ids).logits.tolist()
print(json.dumps(out))
"""


def test_uniform_checkpoint_reloads_with_stock_transformers_in_a_fresh_process(
    tmp_path: Path,
) -> None:
    expected, folders = {}, []
    for family in ("gemma3_text", "gpt2"):  # gated with tied embeddings; Conv1D, non-gated
        model, partition, drop = setup(family, uniform=True)
        prune_model(model, partition, drop)
        folder = tmp_path / family
        save_pruned(model, None, folder, RECORD)
        record = read_pruning_record(folder)
        assert record["uniform"] and record["loader"] == "transformers"
        assert record["method"] == "sort" and record["widths"] == [f.width for f in ffns(model)]
        expected[str(folder)] = logits(model, IDS)
        folders.append(str(folder))
    done = subprocess.run(
        [sys.executable, "-c", RELOAD, json.dumps(IDS.tolist()), *folders],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    for folder in folders:
        torch.testing.assert_close(
            torch.tensor(got[folder]), expected[folder], rtol=1e-5, atol=1e-5
        )


@pytest.mark.parametrize(
    ("family", "uniform"), [("llama", False), ("gpt2", False), ("bloom", True)]
)
def test_babelmoe_layout_reloads_with_load_pruned_only(
    tmp_path: Path, family: str, uniform: bool
) -> None:
    from transformers import AutoModelForCausalLM

    model, partition, drop = setup(family, uniform)
    prune_model(model, partition, drop)
    save_pruned(model, None, tmp_path / "p", RECORD)
    record = read_pruning_record(tmp_path / "p")
    assert record["loader"] == "babelmoe" and record["uniform"] == uniform
    reloaded = load_pruned(tmp_path / "p")
    assert [f.width for f in ffns(reloaded)] == record["widths"]
    torch.testing.assert_close(logits(reloaded, IDS), logits(model, IDS), rtol=1e-6, atol=1e-6)
    with pytest.raises(Exception, match=r"(?i)mismatch|size"):  # never silently wrong weights
        AutoModelForCausalLM.from_pretrained(tmp_path / "p")


def test_existing_output_is_never_silently_replaced(tmp_path: Path) -> None:
    model, partition, drop = setup("llama", uniform=True)
    prune_model(model, partition, drop)
    out = tmp_path / "out"
    identity = {"partition_sha256": "x", "criterion": {"ratio": 0.25}}
    assert check_can_write_pruned(out, identity, force=False)
    save_pruned(model, None, out, RECORD)
    assert not check_can_write_pruned(out, identity, force=False)  # the same: keep it
    with pytest.raises(BabelmoeError, match="different pruned model"):
        check_can_write_pruned(out, {**identity, "criterion": {"ratio": 0.4}}, force=False)
    assert check_can_write_pruned(out, {**identity, "criterion": {"ratio": 0.4}}, force=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(BabelmoeError, match="not a pruned model"):
        check_can_write_pruned(tmp_path / "other", identity, force=False)
    save_pruned(model, None, out, {**RECORD, "method": "norm"})  # replace (after a forced check)
    assert read_pruning_record(out)["method"] == "norm"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "out"]  # no temporaries left
    assert (out / PRUNING_FILE).is_file()


def test_gguf_loaded_models_save_as_plain_float_and_real_quantization_is_refused(
    tmp_path: Path,
) -> None:
    from transformers import AutoModelForCausalLM

    model, partition, drop = setup("llama", uniform=True)
    prune_model(model, partition, drop)
    model.config.quantization_config = {"quant_method": "gguf", "gguf_file": "x.gguf"}
    model.hf_quantizer = object()  # what save_pretrained refuses for a GGUF-loaded model
    save_pruned(model, None, tmp_path / "p", RECORD)
    assert model.config.quantization_config["quant_method"] == "gguf"  # restored afterwards
    saved = json.loads((tmp_path / "p" / "config.json").read_text())
    assert "quantization_config" not in saved
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "p")
    torch.testing.assert_close(logits(reloaded, IDS), logits(model, IDS))
    model.config.quantization_config = {"quant_method": "bitsandbytes"}
    with pytest.raises(BabelmoeError, match="quantized"):
        save_pruned(model, None, tmp_path / "q", RECORD)
    assert not (tmp_path / "q").exists()
