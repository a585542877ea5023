"""The compiled path on CPU (``torch.compile`` works here with any backend; the tests use
``aot_eager``, which traces exactly as the CUDA default does, without building C++ kernels):
one graph serves every decoder layer and every batch shape, the hooks still fire inside it,
the counts equal the eager run, and the dynamo settings hold for the block only."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo

from babelmoe.experts.partition import Partition
from babelmoe.models.ffn import ffns
from babelmoe.profile import core
from babelmoe.profile.batches import language_sequences, make_batches
from babelmoe.profile.core import Scoring, compiled_layers, profile_batches
from babelmoe.testing import tiny_model


def test_compiled_layers_keep_outputs_and_hooks_and_restore_settings():
    model = tiny_model("llama", num_hidden_layers=10)  # more layers than dynamo's default limit 8
    calls = torch.zeros((), dtype=torch.int64)

    def hook(_module, _args):  # one function for all layers (a lambda each would be 10 graphs)
        calls.add_(1)

    for ffn in ffns(model):
        ffn.down.register_forward_pre_hook(hook)
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randint(3, 100, shape, generator=g) for shape in [(2, 9), (3, 17), (2, 5)]]
    limit, suppress = torch._dynamo.config.cache_size_limit, torch._dynamo.config.suppress_errors
    with torch.no_grad():
        dense = [model(ids, use_cache=False).logits for ids in inputs]
        with compiled_layers(model, True, backend="aot_eager") as report:
            compiled = [model(ids, use_cache=False).logits for ids in inputs]
    for a, b in zip(compiled, dense, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert int(calls) == 10 * 3 * 2
    assert (report.graphs, report.limit_hits) == (1, 0)  # all layers, all three shapes
    assert (torch._dynamo.config.cache_size_limit, torch._dynamo.config.suppress_errors) == (
        limit,
        suppress,
    )
    assert all(layer._compiled_call_impl is None for layer in model.model.layers)
    assert not any(hasattr(f.down, "_babelmoe_values") for f in ffns(model))


def _partition(n_layers: int, width: int, n_experts: int) -> Partition:
    g = torch.Generator().manual_seed(1)
    base = torch.arange(width) % n_experts
    labels = torch.stack([base[torch.randperm(width, generator=g)] for _ in range(n_layers)])
    return Partition(labels=labels, n_experts=n_experts, meta={})


def _docs(seed: int, n_docs: int = 24) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 70, (n_docs,), generator=g).tolist()
    return [torch.randint(3, 120, (n,), generator=g).tolist() for n in lengths]


@pytest.mark.parametrize("packing", [False, True])
def test_profile_compiles_one_graph_for_all_layers_and_batch_shapes(monkeypatch, packing):
    monkeypatch.setattr(core, "COMPILE_DEVICE_TYPES", frozenset({"cpu", "cuda"}))
    model = tiny_model("llama", num_hidden_layers=10, dtype=torch.float64)
    part = _partition(10, 64, 8)
    docs = [_docs(0), _docs(1), _docs(2)]
    seqs = [
        s for lang, d in enumerate(docs) for s in language_sequences(d, lang, 2, 1, 48, packing)
    ]
    batches = make_batches(seqs, None, 0, batch_tokens=200)
    assert len({tuple(b.input_ids.shape) for b in batches}) >= 4  # several batch shapes
    compiled = profile_batches(
        model, part, batches, 3, 2, Scoring(compile=True, compile_layers=True, backend="aot_eager")
    )
    eager = profile_batches(model, part, batches, 3, 2, Scoring(compile=False))
    timings = compiled.timings
    # packed rows: one graph with the packed-sequence mask, one for batches in which no row
    # holds two chunks (the model then passes no mask)
    assert (timings.graphs, timings.limit_hits) == (2 if packing else 1, 0)
    assert timings.batches == len(batches) and timings.counted_tokens == int(
        eager.tokens[:-1].sum()
    )
    assert torch.equal(compiled.counts, eager.counts)
    assert torch.equal(compiled.tokens, eager.tokens)


def test_the_compiled_hook_has_no_index_or_scatter(monkeypatch):
    """An int64 ``index_add_``/``index_put_(accumulate=True)`` has no atomic add in Triton, so
    inductor runs it with ATen's sorting kernel, and writes through a layer-index tensor run
    ATen's gather kernels, once per layer and batch (seen on an H200). The hook writes its
    layer's slots (its output projection's buffers) with plain copies."""
    monkeypatch.setattr(core, "COMPILE_DEVICE_TYPES", frozenset({"cpu", "cuda"}))
    seen: list[str] = []

    def recording_backend(gm, _inputs):
        seen.extend(str(node.target) for node in gm.graph.nodes)
        return gm.forward

    model = tiny_model("llama", num_hidden_layers=2)
    part = _partition(2, 64, 8)
    seqs = [
        s for lang, d in enumerate([_docs(3)]) for s in language_sequences(d, lang, 2, 1, 48, False)
    ]
    batches = make_batches(seqs, None, 0, batch_tokens=200)
    torch._dynamo.reset()
    with monkeypatch.context() as m:
        m.setattr(core, "compiled_layers", _with_backend(core.compiled_layers, recording_backend))
        profile_batches(model, part, batches, 1, 2, Scoring(compile=True, compile_layers=True))
    assert "copy_" in seen  # the hook was traced
    indexing = ("index_add", "index_put", "index_copy", "scatter", "index_select")
    assert not [name for name in seen if any(op in name for op in indexing)], seen


def _with_backend(compiled_layers_fn, backend):
    def patched(model, enabled, _backend="inductor"):
        return compiled_layers_fn(model, enabled, backend)

    return patched
