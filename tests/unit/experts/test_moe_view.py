"""The MoE view: E experts that reproduce the dense FFN when all are active."""

from __future__ import annotations

import pytest
import torch

from babelmoe.experts.moe_view import (
    column_experts,
    expert_layout,
    expert_scores,
    layout_order,
    moe_view,
    slice_order,
)
from babelmoe.experts.partition import Partition
from babelmoe.models.ffn import ffns
from babelmoe.testing import balanced_partition, tiny_model


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


@pytest.mark.parametrize("n_experts", [8, 5])  # sizes 8 (head only), 13/12 (head 8 + tails)
def test_masked_expert_equals_zeroed_neurons(n_experts):
    model = tiny_model("llama", dtype=torch.float64)
    ids = torch.randint(3, 100, (1, 7), generator=torch.Generator().manual_seed(1))
    part = balanced_partition(2, 64, n_experts, seed=3)
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
    mask = torch.ones(n_experts)
    mask[drop] = 0
    with moe_view(model, part) as mixers, torch.no_grad():
        mixers[0].mask = mask
        torch.testing.assert_close(model(ids).logits, expected, rtol=1e-10, atol=1e-10)


def _scatter_scores(h: torch.Tensor, labels: torch.Tensor, n_experts: int, norm: str):
    """Every expert's score by a scatter over its neurons' labels (no layout at all)."""
    zeros = torch.zeros(h.shape[0], n_experts, dtype=torch.float64)
    if norm == "l2":
        return zeros.index_add_(1, labels, h**2).sqrt()
    if norm == "max":
        return zeros.index_reduce_(1, labels, h.abs(), "amax")
    sums = zeros.index_add_(1, labels, h.abs())
    return sums / torch.bincount(labels, minlength=n_experts) if norm == "mean" else sums


@pytest.mark.filterwarnings("ignore:index_reduce")
@pytest.mark.parametrize("norm", ["l2", "l1", "mean", "max"])
@pytest.mark.parametrize(
    ("width", "n_experts"),
    [(64, 5), (64, 8), (11008, 256), (166, 4), (35, 4), (90, 10), (100, 3)],
    # sizes 13/12 (tail only), 8 (head only), 43 (head 40 + tail 3), 42/41 (head 40 + tails of
    # 2 and 1), 9/8 (head 8 + a tail for the larger experts only), 9 (head 8 + 1), 34/33
)
def test_expert_scores_match_a_scatter_over_labels(width, n_experts, norm):
    g = torch.Generator().manual_seed(width)
    labels = (torch.arange(width) % n_experts)[torch.randperm(width, generator=g)]
    part = Partition(labels=labels[None], n_experts=n_experts, meta={})
    order = layout_order(part, 0)
    assert sorted(order.tolist()) == list(range(width))
    assert torch.equal(labels[order], column_experts(part.sizes()[0]))
    h = torch.randn(3, width, dtype=torch.float64, generator=g)
    scores = expert_scores(h[:, order], part.sizes()[0], norm)
    expected = _scatter_scores(h, labels, n_experts, norm)
    torch.testing.assert_close(scores, expected, rtol=1e-12, atol=1e-12)


def test_layout_aligns_every_expert_head():
    """Llama-2-7B's 43-neuron experts: 40 of each side by side (starts at multiples of 8), then
    the 3 left of every expert."""
    sizes = torch.full((256,), 43)
    order = slice_order(sizes)
    assert order[:80].tolist() == list(range(40)) + list(range(43, 83))
    assert order[10240:10246].tolist() == [40, 41, 42, 83, 84, 85]


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
    with (
        pytest.raises(BabelmoeError, match="not balanced in label order"),
        expert_layout(model, flipped),
    ):
        pass
    save_partition(tmp_path, flipped, {"name": "tiny"})
    with pytest.raises(BabelmoeError, match="relabel the experts"):
        load_partition(tmp_path)
