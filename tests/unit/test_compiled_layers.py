"""``compiled_layers`` (the CUDA fast path) on CPU: same outputs, hooks still fire inside the
compiled layers, every layer compiles, and the dynamo settings hold for the block only."""

from __future__ import annotations

import torch
import torch._dynamo

from babelmoe.models.ffn import ffns
from babelmoe.models.shapes import tiny_model
from babelmoe.profile.core import compiled_layers


def test_compiled_layers_keep_outputs_and_hooks_and_restore_settings():
    model = tiny_model("llama", num_hidden_layers=10)  # more layers than dynamo's default limit 8
    seen: list[int] = []
    for ffn in ffns(model):
        ffn.down.register_forward_pre_hook(lambda _m, _a, i=ffn.layer: seen.append(i))
    ids = torch.randint(3, 100, (2, 8), generator=torch.Generator().manual_seed(0))
    limit, suppress = torch._dynamo.config.cache_size_limit, torch._dynamo.config.suppress_errors
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    with torch.no_grad():
        dense = model(ids).logits
        with compiled_layers(model, True):
            compiled = model(ids).logits
    torch.testing.assert_close(compiled, dense, rtol=1e-5, atol=1e-5)
    assert seen == list(range(10)) * 2
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 10  # none left eager
    assert (torch._dynamo.config.cache_size_limit, torch._dynamo.config.suppress_errors) == (
        limit,
        suppress,
    )
    assert all(layer._compiled_call_impl is None for layer in model.model.layers)
