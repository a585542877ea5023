"""Selection rules (pure) and their link to a profile: counts, order, seeds, guarantees, errors."""

from __future__ import annotations

import pytest
import torch

from babelmoe.errors import BabelmoeError
from babelmoe.prune.criteria import (
    PruneConfig,
    Selection,
    adaptive_counts,
    aggregate_languages,
    apportion,
    select_experts,
)
from babelmoe.prune.targets import (
    check_profile_matches,
    language_names,
    resolve_languages,
    select_for_profile,
)
from babelmoe.testing import balanced_partition, synthetic_profile

L, E = 4, 16
LANGS = [
    {"code": "eng", "bcp47": "en"},
    {"code": "fra", "bcp47": "fr"},
    {"code": "cmn", "bcp47": "cmn-Hans"},
]


def distinct(seed: int = 0) -> torch.Tensor:
    """[L, E] float64 values, all different."""
    return torch.randperm(L * E, generator=torch.Generator().manual_seed(seed)).double().view(
        L, E
    ) / (L * E)


def select(method: str, values: torch.Tensor | None, **kw) -> torch.Tensor:
    amount = {"tau": kw.pop("tau")} if method == "threshold" else {"ratio": kw.pop("ratio", 0.25)}
    config = PruneConfig(method=method, languages=("en",), **amount, **kw)  # type: ignore[arg-type]
    return select_experts(config, values, (L, E)).drop


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_ratio_outside_unit_interval_is_an_error(ratio: float) -> None:
    with pytest.raises(BabelmoeError, match=r"\[0, 1\)"):
        PruneConfig(method="sort", ratio=ratio, languages=("en",))


def test_config_errors() -> None:
    with pytest.raises(BabelmoeError, match="method threshold takes tau, not ratio"):
        PruneConfig(method="threshold", ratio=0.2, languages=("en",))
    with pytest.raises(BabelmoeError, match="tau"):
        PruneConfig(method="threshold", tau=1.5, languages=("en",))
    with pytest.raises(BabelmoeError, match="needs target languages"):
        PruneConfig(method="sort", ratio=0.2)
    with pytest.raises(BabelmoeError, match="unknown pruning method"):
        PruneConfig(method="magic", ratio=0.2, languages=("en",))  # type: ignore[arg-type]
    PruneConfig(method="random", ratio=0.2)  # random needs no language


def test_sort_drops_the_globally_lowest() -> None:
    values = distinct()
    drop = select("sort", values, ratio=0.25)
    n = round(0.25 * L * E)
    assert int(drop.sum()) == n
    assert values[drop].max() < values[~drop].min()


def test_sort_per_layer_and_norm_drop_the_lowest_of_every_layer() -> None:
    values = distinct()
    for method in ("sort-per-layer", "norm"):
        drop = select(method, values, ratio=0.25)
        assert drop.sum(1).tolist() == [round(0.25 * E)] * L
        for layer in range(L):
            assert values[layer][drop[layer]].max() < values[layer][~drop[layer]].min()


def test_threshold_drops_below_tau_and_keeps_one_expert_per_layer() -> None:
    values = distinct()
    values[2] = 0.0  # every expert of layer 2 is below tau
    config = PruneConfig(method="threshold", tau=0.3, languages=("en",))
    selection = select_experts(config, values, (L, E))
    assert selection.drop[[0, 1, 3]].equal((values < 0.3)[[0, 1, 3]])
    assert int((~selection.drop[2]).sum()) == 1
    assert any("layer 2" in note for note in selection.notes)


def test_no_layer_is_ever_emptied() -> None:
    values = distinct()
    values[1] = -1.0  # layer 1 is the lowest everywhere
    for method, ratio in (("sort", 0.3), ("sort", 0.99), ("adaptive", 0.9), ("random", 0.99)):
        drop = select(method, values, ratio=ratio)
        assert (~drop).sum(1).min() >= 1, method
    selection = select_experts(
        PruneConfig(method="sort", ratio=0.3, languages=("en",)), values, (L, E)
    )
    assert selection.n_dropped == round(0.3 * L * E)  # the total is made up elsewhere
    assert any("layer(s) [1]" in note for note in selection.notes)


def test_ties_are_broken_by_the_seed_not_by_position() -> None:
    zeros = torch.zeros(L, E, dtype=torch.float64)
    a = select("sort", zeros, ratio=0.5, seed=0)
    b = select("sort", zeros, ratio=0.5, seed=1)
    assert not a.equal(b)
    assert a.sum(1).max() < E - 1  # not "the first layers first"


def test_random_is_seeded_counted_and_ignores_the_statistic() -> None:
    a = select("random", None, ratio=0.4, seed=3)
    assert a.equal(select("random", distinct(), ratio=0.4, seed=3))
    assert not a.equal(select("random", None, ratio=0.4, seed=4))
    assert int(a.sum()) == round(0.4 * L * E)


def test_adaptive_takes_more_from_layers_with_more_low_frequency_experts() -> None:
    values = distinct()
    values[3] = values[3] / 100  # layer 3: every expert is low-frequency
    counts = adaptive_counts(values, round(0.25 * L * E), 0.5)
    assert int(counts.sum()) == round(0.25 * L * E)
    assert counts[3] == counts.max() and counts[3] > counts.min()
    drop = select("adaptive", values, ratio=0.25)
    assert drop.sum(1).tolist() == counts.tolist()
    flat = torch.ones(L, E, dtype=torch.float64)  # nothing is "low": uniform
    assert adaptive_counts(flat, 8, 0.5).tolist() == [2, 2, 2, 2]


def test_apportion_sums_and_caps() -> None:
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        weights = torch.rand(6, generator=generator) * (torch.rand(6, generator=generator) > 0.3)
        caps = torch.randint(0, 10, (6,), generator=generator)
        total = int(torch.randint(0, int(caps.sum()) + 5, (1,), generator=generator))
        counts = apportion(total, weights, caps)
        assert int(counts.sum()) == min(total, int(caps.sum()))
        assert bool((counts <= caps).all()) and bool((counts >= 0).all())
    assert apportion(10, torch.tensor([6.0, 4.0, 0.0]), torch.tensor([5, 5, 5])).tolist() == [
        5,
        5,
        0,
    ]


def test_aggregate_mean_and_max() -> None:
    stat = torch.tensor([[[0.0, 1.0]], [[1.0, 0.0]], [[5.0, 5.0]]])  # [3 lang, 1 layer, 2 experts]
    assert aggregate_languages(stat, [0, 1], "mean").tolist() == [[0.5, 0.5]]
    assert aggregate_languages(stat, [0, 1], "max").tolist() == [[1.0, 1.0]]


def make_profile(**kw):
    partition = balanced_partition(L, 32, E)
    freq = torch.rand(3, L, E, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return synthetic_profile(freq, partition, LANGS, ["en", "fr", "zh"], **kw), partition


def test_languages_resolve_by_request_code_or_bcp47() -> None:
    profile, _ = make_profile()
    assert language_names(profile) == ["en", "fr", "zh"]
    assert resolve_languages(profile, ["en", "fra", "cmn-hans", "ZH"]) == [0, 1, 2, 2]
    with pytest.raises(BabelmoeError, match=r"'de' was not profiled \(profiled: en, fr, zh\)"):
        resolve_languages(profile, ["de"])


def test_norm_ranks_by_mean_score_and_frequency_methods_by_frequency() -> None:
    partition = balanced_partition(L, 32, E)
    freq = distinct(0).expand(3, L, E).clone()
    score = distinct(1).expand(3, L, E).clone()
    profile = synthetic_profile(freq, partition, LANGS, ["en", "fr", "zh"], mean_score=score)
    by_freq = select_for_profile(
        profile, PruneConfig(method="sort-per-layer", ratio=0.25, languages=("en",))
    )
    by_norm = select_for_profile(profile, PruneConfig(method="norm", ratio=0.25, languages=("en",)))
    assert by_freq.drop.equal(select("sort-per-layer", distinct(0), ratio=0.25))
    assert by_norm.drop.equal(select("norm", profile.mean_score[0], ratio=0.25))
    assert not by_freq.drop.equal(by_norm.drop)


def test_profile_from_another_partition_is_refused() -> None:
    profile, partition = make_profile()
    check_profile_matches(profile, partition)
    with pytest.raises(BabelmoeError, match="profile was counted with partition"):
        check_profile_matches(profile, balanced_partition(L, 32, E, seed=1))


def test_methods_are_a_registry_with_did_you_mean():
    from babelmoe.prune.criteria import METHODS, get_method, register_method

    with pytest.raises(BabelmoeError, match="did you mean 'sort-per-layer'"):
        PruneConfig(method="sort-per-layr", ratio=0.25, languages=("en",))

    @register_method("every-other", statistic=None, summary="test-only rule")
    def every_other(config, values, shape):
        drop = torch.zeros(shape, dtype=torch.bool)
        drop[:, ::2] = True
        return Selection(drop, [])

    try:
        selection = select_experts(PruneConfig(method="every-other", ratio=0.5), None, (2, 4))
        assert selection.drop.sum().item() == 4 and get_method("every-other").statistic is None
    finally:
        del METHODS["every-other"]
