"""The mass-budget selection rule (pure): counts, floors, its two limits (sort, sort-per-layer)."""

from __future__ import annotations

import pytest
import torch

from babelmoe.errors import BabelmoeError
from babelmoe.prune.criteria import (
    METHODS,
    PruneConfig,
    drop_lowest_global,
    drop_lowest_per_layer,
    select_experts,
)
from babelmoe.prune.mass_budget import floor_count, select_mass_budget

L, E = 4, 16


def distinct(seed: int = 0) -> torch.Tensor:
    """[L, E] float64 values, all different."""
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(L * E, generator=g).double().view(L, E) / (L * E)


def skewed() -> torch.Tensor:
    """Layer 0 holds every high value: a global sort would strip layers 1-3 bare."""
    values = distinct(1) * 0.01
    values[0] += 1.0
    return values


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.25, 0.5, 0.7, 0.9, 0.95])
@pytest.mark.parametrize("share", [0.0, 0.3, 0.5, 1.0])
def test_drops_the_same_count_as_every_counted_method(ratio: float, share: float) -> None:
    sel = select_mass_budget(distinct(), ratio, floor_share=share)
    n_drop = min(round(ratio * L * E), L * (E - 1))  # every layer keeps an expert
    assert sel.n_dropped == n_drop
    kept = (~sel.drop).sum(1)
    assert bool((kept >= floor_count(L * E - n_drop, L, share)).all())
    assert bool((kept >= 1).all())


def test_floor_protects_the_layers_a_global_sort_strips() -> None:
    values = skewed()
    sort = drop_lowest_global(values, round(0.75 * L * E), seed=0)
    assert int((~sort.drop[1:]).sum()) == 3  # sort: one expert left in each of layers 1-3
    sel = select_mass_budget(values, 0.75, floor_share=0.5)
    floor = floor_count(16, L, 0.5)  # 16 kept in all: ceil(0.5 * 16 / 4) = 2
    assert floor == 2
    assert (~sel.drop).sum(1).tolist() == [10, 2, 2, 2]  # keep 16: floors 2 + 2 + 2, rest to 0
    # The floor is each layer's top experts; layer 0 keeps its highest ones.
    for layer in range(1, L):
        top = torch.topk(values[layer], floor).indices
        assert not bool(sel.drop[layer, top].any())
    kept0 = (~sel.drop[0]).nonzero().flatten()
    assert set(kept0.tolist()) == set(torch.topk(values[0], len(kept0)).indices.tolist())


def test_share_zero_is_sort_and_share_one_is_sort_per_layer() -> None:
    values = distinct(3)
    for ratio in (0.25, 0.5, 0.75):
        n_drop = round(ratio * L * E)
        assert torch.equal(
            select_mass_budget(values, ratio, floor_share=0.0).drop,
            drop_lowest_global(values, n_drop, seed=0).drop,
        )
        counts = torch.full((L,), round(ratio * E), dtype=torch.long)
        assert torch.equal(
            select_mass_budget(values, ratio, floor_share=1.0).drop,
            drop_lowest_per_layer(values, counts, seed=0).drop,
        )


def test_keeps_at_least_as_much_mass_as_sort_per_layer() -> None:
    values = skewed()
    for ratio in (0.5, 0.75, 0.9):
        mine = select_mass_budget(values, ratio, floor_share=0.5)
        counts = torch.full((L,), round(ratio * E), dtype=torch.long)
        uniform = drop_lowest_per_layer(values, counts, seed=0)
        assert float(values[~mine.drop].sum()) > float(values[~uniform.drop].sum())


def test_ties_follow_the_seed_not_the_position() -> None:
    values = torch.zeros(L, E, dtype=torch.float64)
    firsts = {
        tuple(select_mass_budget(values, 0.5, seed=s).drop.flatten().nonzero().flatten().tolist())
        for s in range(5)
    }
    assert len(firsts) > 1
    a = select_mass_budget(values, 0.5, seed=7).drop
    assert torch.equal(a, select_mass_budget(values, 0.5, seed=7).drop)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(BabelmoeError, match="ratio"):
        select_mass_budget(distinct(), 1.0)
    with pytest.raises(BabelmoeError, match="floor_share"):
        select_mass_budget(distinct(), 0.5, floor_share=1.5)
    with pytest.raises(BabelmoeError, match="shape"):
        select_mass_budget(torch.zeros(E), 0.5)


def test_registered_as_a_frequency_method_the_sweep_can_run() -> None:
    from babelmoe.prune.sweep import swept_methods

    assert METHODS["mass-budget"].statistic == "frequency"
    assert "mass-budget" in swept_methods()
    values = skewed()
    config = PruneConfig(method="mass-budget", ratio=0.75, languages=("en",))
    sel = select_experts(config, values, (L, E))
    assert torch.equal(sel.drop, select_mass_budget(values, 0.75).drop)
