"""Masked evaluation: one loaded model evaluates many pruning configurations by masks on the FFN
intermediate, and the perplexities equal the physically pruned models' (gated, fused, Conv1D,
non-gated families), with several configurations in one forward pass and windows of any
length; the model is left as it was."""

from __future__ import annotations

import copy

import pytest
import torch

from babelmoe.evaluate import PerplexityConfig, perplexity
from babelmoe.evaluate.masked import (
    MaskedEvalConfig,
    evaluate_masked,
    masked_ffns,
    masked_perplexities,
)
from babelmoe.models.ffn import ffns
from babelmoe.prune.criteria import PruneConfig, select_experts
from babelmoe.prune.surgery import prune_model
from babelmoe.testing import TEXTS, balanced_partition, tiny_loaded

E = 8
FAMILIES = ["llama", "gemma3_text", "phi3", "gpt2", "bloom"]  # gated, fused gate-up, non-gated


def drops(partition, seed: int) -> dict[str, torch.Tensor | None]:
    shape = (partition.n_layers, E)
    values = torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return {
        "dense": None,
        "sort": select_experts(
            PruneConfig(method="sort", ratio=0.25, languages=("en",)), values, shape
        ).drop,
        "per-layer": select_experts(
            PruneConfig(method="sort-per-layer", ratio=0.4, languages=("en",)), values, shape
        ).drop,
        "random": select_experts(
            PruneConfig(method="random", ratio=0.4, seed=seed), None, shape
        ).drop,
    }


@pytest.mark.parametrize("family", FAMILIES)
def test_masked_equals_physically_pruned(family: str) -> None:
    loaded = tiny_loaded(family)
    model, tokenizer = loaded.model, loaded.tokenizer
    layers = ffns(model)
    partition = balanced_partition(len(layers), layers[0].width, E)
    configurations = drops(partition, seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # short windows: documents span several windows, of many lengths, in one pool
    config = PerplexityConfig(max_length=24, stride=16)
    results = evaluate_masked(
        model,
        tokenizer,
        partition,
        configurations,
        TEXTS,
        config=config,
        eval_config=MaskedEvalConfig(batch_tokens=96),
    )
    assert set(results) == {(n, lang) for n in configurations for lang in TEXTS}
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(f.width == partition.width for f in ffns(model))
    for name, drop in configurations.items():
        pruned = copy.deepcopy(model)
        if drop is not None:
            prune_model(pruned, partition, drop)
        for lang, texts in TEXTS.items():
            expected = perplexity(pruned, tokenizer, texts, config)
            got = results[name, lang]
            assert got.n_tokens == expected.n_tokens and got.n_bytes == expected.n_bytes
            assert got.nll_sum == pytest.approx(expected.nll_sum, rel=1e-6), (name, lang)
            for a, b in zip(got.documents, expected.documents, strict=True):
                assert a.n_tokens == b.n_tokens
                assert a.nll_sum == pytest.approx(b.nll_sum, rel=1e-6, abs=1e-6)
    # the configurations differ by far more than the tolerance
    assert abs(results["dense", "en"].nll_sum - results["random", "en"].nll_sum) > 1e-2


def test_pairs_choose_what_runs_and_single_configuration_forwards() -> None:
    loaded = tiny_loaded("llama")
    model, tokenizer = loaded.model, loaded.tokenizer
    layers = ffns(model)
    partition = balanced_partition(len(layers), layers[0].width, E)
    configurations = drops(partition, seed=2)
    names = list(configurations)
    pairs = [(1, "en"), (3, "fr"), (0, "en")]
    config = PerplexityConfig(max_length=1024)
    with masked_ffns(model, partition, list(configurations.values())) as masks:
        results, timings = masked_perplexities(model, tokenizer, masks, TEXTS, pairs, config)
        assert timings.batches >= 1 and timings.tokens == sum(r.n_tokens for r in results)
        # one configuration for every row (what udhr-cont and the harness use)
        masks.use(1)
        single = perplexity(model, tokenizer, TEXTS["en"], config)
    assert single.nll_sum == pytest.approx(results[0].nll_sum, rel=1e-5)
    for (c, lang), got in zip(pairs, results, strict=True):
        pruned = copy.deepcopy(model)
        if configurations[names[c]] is not None:
            prune_model(pruned, partition, configurations[names[c]])
        assert got.nll_sum == pytest.approx(
            perplexity(pruned, tokenizer, TEXTS[lang], config).nll_sum, rel=1e-5
        )


@pytest.mark.slow
def test_compiled_masked_evaluation_is_one_graph_for_every_shape_and_configuration() -> None:
    from babelmoe.profile.core import compiled_layers

    loaded = tiny_loaded("llama", num_hidden_layers=3)
    model, tokenizer = loaded.model, loaded.tokenizer
    layers = ffns(model)
    partition = balanced_partition(len(layers), layers[0].width, E)
    configurations = list(drops(partition, seed=3).values())
    pairs = [(c, lang) for c in range(len(configurations)) for lang in TEXTS]
    config = PerplexityConfig(max_length=40, stride=30)
    batching = MaskedEvalConfig(batch_tokens=200)
    with masked_ffns(model, partition, configurations) as masks:
        eager, _ = masked_perplexities(model, tokenizer, masks, TEXTS, pairs, config, batching)
        with compiled_layers(model, True, backend="aot_eager") as report:
            compiled, timings = masked_perplexities(
                model, tokenizer, masks, TEXTS, pairs, config, batching, compiled=True
            )
    assert timings.batches > 3  # several batch shapes
    assert (report.graphs, report.limit_hits) == (1, 0)
    for a, b in zip(compiled, eager, strict=True):
        assert a.nll_sum == pytest.approx(b.nll_sum, rel=1e-5)
