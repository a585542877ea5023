"""The MoE view: E experts that reproduce the dense FFN when all are active."""

from __future__ import annotations

import pytest
import torch

from babelmoe.experts.moe_view import expert_layout, expert_scores, moe_view
from babelmoe.experts.partition import Partition
from babelmoe.models.ffn import ffns
from babelmoe.models.shapes import tiny_model
from babelmoe.testing import balanced_partition


@pytest.mark.parametrize("model_type", ["llama", "gpt2", "phi3"])
@pytest.mark.parametrize("n_experts", [8, 5])  # 64 neurons: 8 divides, 5 gives sizes 13/12
def test_all_experts_active_equals_dense(model_type, n_experts):
    model = tiny_model(model_type, dtype=torch.float64)
    ids = torch.randint(3, 100, (2, 11), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        dense = model(ids).logits
    part = balanced_partition(2, ffns(model)[0].width, n_experts)
    with moe_view(model, part) as mixers, torch.no_grad():
        assert len(mixers) == 2
        torch.testing.assert_close(model(ids).logits, dense, rtol=1e-10, atol=1e-10)
        # Switching experts off changes the output; switching them back on restores it.
        mixers[0].mask = torch.zeros(n_experts)
        assert not torch.allclose(model(ids).logits, dense)
        mixers[0].mask = None
        torch.testing.assert_close(model(ids).logits, dense, rtol=1e-10, atol=1e-10)
    with torch.no_grad():  # the original layout and modules are back
        torch.testing.assert_close(model(ids).logits, dense, rtol=0, atol=0)


def test_masked_expert_equals_zeroed_neurons():
    model = tiny_model("llama", dtype=torch.float64)
    ids = torch.randint(3, 100, (1, 7), generator=torch.Generator().manual_seed(1))
    part = balanced_partition(2, 64, 8, seed=3)
    drop = 2
    neurons = (part.labels[0] == drop).nonzero().flatten()

    def zero(_m, args):
        h = args[0].clone()
        h[..., neurons] = 0
        return (h,)

    handle = ffns(model)[0].down.register_forward_pre_hook(zero)
    with torch.no_grad():
        expected = model(ids).logits
    handle.remove()
    mask = torch.ones(8)
    mask[drop] = 0
    with moe_view(model, part) as mixers, torch.no_grad():
        mixers[0].mask = mask
        torch.testing.assert_close(model(ids).logits, expected, rtol=1e-10, atol=1e-10)


def test_expert_scores_match_a_scatter_over_labels():
    part = balanced_partition(1, 64, 5, seed=4)
    h = torch.randn(3, 64, dtype=torch.float64)
    model = tiny_model("llama", dtype=torch.float64)
    with expert_layout(
        model, Partition(labels=part.labels.repeat(2, 1), n_experts=5, meta={})
    ) as sizes:
        order = part.expert_order(0)
        scores = expert_scores(h[:, order], sizes[0])
    expected = torch.zeros(3, 5, dtype=torch.float64).index_add_(1, part.labels[0], h**2).sqrt()
    torch.testing.assert_close(scores.double(), expected, rtol=1e-6, atol=1e-6)
    l1 = expert_scores(h[:, order], sizes[0], "l1").double()
    torch.testing.assert_close(
        l1,
        torch.zeros(3, 5, dtype=torch.float64).index_add_(1, part.labels[0], h.abs()),
        rtol=1e-6,
        atol=1e-6,
    )


def test_a_partition_with_larger_experts_on_later_labels_is_refused(tmp_path):
    """expert_scores slices the larger experts first: a hand-made partition whose larger
    experts carry the later labels would be scored on the wrong slices, so it is refused."""
    from babelmoe.errors import BabelmoeError
    from babelmoe.experts.partition import check_canonical, load_partition, save_partition

    model = tiny_model("llama", dtype=torch.float64)
    width = ffns(model)[0].width  # 64 neurons into 5 experts: sizes 13, 13, 13, 13, 12
    canonical = balanced_partition(2, width, 5)
    check_canonical(canonical)  # what split writes passes
    flipped = Partition(labels=4 - canonical.labels, n_experts=5, meta=dict(canonical.meta))
    assert flipped.sizes()[0].tolist() == [12, 13, 13, 13, 13]
    with pytest.raises(BabelmoeError, match="larger experts first"):
        check_canonical(flipped)
    with pytest.raises(BabelmoeError, match="not balanced in label order"), expert_layout(
        model, flipped
    ):
        pass
    save_partition(tmp_path, flipped, {"name": "tiny"})
    with pytest.raises(BabelmoeError, match="relabel the experts"):
        load_partition(tmp_path)
