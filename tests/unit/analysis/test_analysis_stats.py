"""Permutation tests, bootstrap intervals and the whole analysis on cases with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from babelmoe.analysis.config import AnalysisConfig, DiffConfig, StatisticsConfig
from babelmoe.analysis.diff import diff_profiles
from babelmoe.analysis.profile_analysis import analyse_profile
from babelmoe.analysis.stats.bootstrap import (
    percentile_interval,
    resampled_frequency,
    run_bootstrap,
    unit_weights,
)
from babelmoe.analysis.stats.metrics import pairwise
from babelmoe.analysis.stats.permutation import (
    LabelPermutations,
    group_statistic,
    group_test,
    holm,
    mantel,
    partial_mantel,
)
from babelmoe.errors import BabelmoeError
from babelmoe.testing import PAPER_LANGUAGE_INFO, make_profile, true_frequency


def _separated(n: int, members: list[int], inside: float = 0.1, outside: float = 1.0):
    d = np.full((n, n), outside)
    for i in members:
        for j in members:
            d[i, j] = inside
    np.fill_diagonal(d, 0.0)
    return d


def test_group_test_separated_groups_is_significant_exactly():
    result = group_test(_separated(9, [1, 2, 3]), [1, 2, 3], 10_000, 99, seed=0)
    assert result.exact and result.n_permutations == math.comb(9, 3)
    assert result.statistic == pytest.approx(0.1 - 1.0)
    assert result.p_value == pytest.approx(1 / 84) == result.min_p
    assert result.p_value < 0.05


def test_group_test_identical_languages_is_not_significant():
    flat = np.ones((9, 9)) - np.eye(9)  # every language equally far from every other
    result = group_test(flat, [1, 2, 3], 10_000, 99, seed=0)
    assert result.statistic == pytest.approx(0.0) and result.p_value == pytest.approx(1.0)


def test_group_test_monte_carlo_when_enumeration_is_too_large():
    result = group_test(_separated(12, [0, 1, 2]), [0, 1, 2], exact_limit=10, n_random=199, seed=3)
    assert not result.exact and result.n_permutations == 200
    assert result.min_p == pytest.approx(1 / 200) and result.p_value < 0.05


def test_group_statistic_is_vectorised_over_bootstrap_samples():
    d = np.stack([_separated(5, [0, 1]), _separated(5, [0, 1], inside=0.5)])
    assert group_statistic(d, [0, 1]).tolist() == pytest.approx([0.1 - 1.0, 0.5 - 1.0])


def test_mantel_correlated_and_uncorrelated():
    rng = np.random.default_rng(0)
    n = 7  # 5040 relabelings, enumerated
    points = rng.random((n, 2))
    a = np.linalg.norm(points[:, None] - points[None], axis=-1)
    plan = LabelPermutations(n, exact_limit=10_000, n_random=0, seed=0)
    assert plan.exact and len(plan.pair_index) == math.factorial(n)
    same = mantel(plan, a, a**2)  # monotone: Spearman r = 1
    assert same.statistic == pytest.approx(1.0) and same.p_value < 0.01
    assert same.p_value == pytest.approx(same.min_p)
    other = rng.random((n, 2))
    b = np.linalg.norm(other[:, None] - other[None], axis=-1)
    unrelated = mantel(plan, a, b)
    tri = np.triu_indices(n, 1)
    assert unrelated.statistic == pytest.approx(spearmanr(a[tri], b[tri]).statistic)
    assert unrelated.p_value > 0.05


def test_partial_mantel_removes_a_confound():
    rng = np.random.default_rng(0)
    n = 8  # 40320 relabelings

    def sym(x):
        return x + x.T

    plan = LabelPermutations(n, 100_000, 0, 0)
    c = sym(rng.random((n, n)))
    a, b = c + 0.4 * sym(rng.random((n, n))), c + 0.4 * sym(rng.random((n, n)))
    assert mantel(plan, a, b).p_value < 0.001  # a and b only share c ...
    partial = partial_mantel(plan, a, b, c)
    assert abs(partial.statistic) < 0.2 and partial.p_value > 0.05  # ... which explains it
    assert math.isnan(partial_mantel(plan, a, c, c).statistic)  # b == c: undefined


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(holm([float("nan"), 0.2])[0]) and holm([float("nan"), 0.2])[1] == 0.2


def test_unit_weights_draw_only_non_empty_units():
    tokens = np.array([[5, 5, 0, 5], [5, 0, 0, 0]], dtype=float)
    w = unit_weights(np.random.default_rng(0), tokens, batch=20, paired=False)
    assert w.shape == (20, 2, 4)
    assert (w[:, 0].sum(-1) == 3).all() and (w[:, 0, 2] == 0).all()
    assert (w[:, 1, 0] == 1).all()  # a single unit: always the same resample
    paired = unit_weights(np.random.default_rng(0), tokens, batch=5, paired=True)
    assert (paired[:, 0] == paired[:, 1]).all()


def test_resampling_every_unit_once_gives_the_profile_frequency():
    profile = make_profile(n_layers=2, n_experts=4, n_units=3)
    weights = np.ones((1, 9, 3))
    freq = resampled_frequency(
        profile.unit_counts.numpy().astype(float),
        profile.unit_tokens.numpy().astype(float),
        weights,
    )
    assert np.allclose(freq[0], profile.frequency.numpy())


def test_percentile_interval_shapes_and_nan():
    samples = np.stack([np.arange(101.0), np.full(101, np.nan)], axis=1)
    ci = percentile_interval(samples, 0.9)
    assert ci.shape == (2, 2) and ci[:, 0].tolist() == pytest.approx([5.0, 95.0])
    assert np.isnan(ci[:, 1]).all()
    assert percentile_interval(np.arange(101.0), 0.5).tolist() == pytest.approx([25.0, 75.0])


def test_bootstrap_interval_covers_the_true_value():
    """Nominal 90% intervals of a cosine similarity cover the truth in most of 40 datasets."""
    langs = PAPER_LANGUAGE_INFO[:3]
    truth_freq = true_frequency(langs, 2, 16, seed=5)
    truth = pairwise(truth_freq.reshape(3, -1), "cosine")[0, 1]

    def statistic(freq):
        return {"cos": pairwise(freq.reshape(freq.shape[0], 3, -1), "cosine")[:, 0, 1]}

    covered = 0
    for trial in range(40):
        p = make_profile(
            langs, frequency=truth_freq, n_units=12, tokens_per_unit=500, seed=100 + trial
        )
        samples = run_bootstrap(
            p.unit_counts.numpy(),
            p.unit_tokens.numpy(),
            statistic,
            n_resamples=200,
            seed=trial,
            batch_size=100,
        )
        lo, hi = percentile_interval(samples["cos"], 0.9)
        covered += lo <= truth <= hi
    assert covered >= 30  # about 35 of 40 expected (percentile intervals under-cover a bit)


def _quick(n_bootstrap: int = 100, **overrides) -> AnalysisConfig:
    statistics = StatisticsConfig(n_bootstrap=n_bootstrap, n_permutations=199)
    return AnalysisConfig(statistics=statistics, **overrides)


def test_analysis_finds_a_planted_romance_group():
    profile = make_profile(n_layers=3, n_experts=24, lineage_effect=1.0, language_effect=0.3)
    result = analyse_profile(profile, _quick())
    romance = result.groups[0]
    assert romance.name == "Romance" and romance.members == ["fr", "es", "pt"]
    assert romance.test.statistic < 0 and romance.test.p_value < 0.05
    assert romance.test.exact and romance.test.n_permutations == 84
    assert romance.ci[1] < 0  # the whole interval says "closer"
    genealogy = next(a for a in result.agreement if a.reference == "genealogy" and a.layer is None)
    assert genealogy.test.statistic > 0.5 and genealogy.test.p_value < 0.01
    assert genealogy.test.exact and genealogy.test.n_permutations == math.factorial(9)
    assert {"Indic genus", "Indo-European family"} <= {g.name for g in result.groups}
    assert result.metrics["cosine"].layers_ci.shape == (2, 3, 9, 9)


def test_analysis_of_identical_languages_finds_no_group():
    profile = make_profile(
        n_layers=3, n_experts=24, lineage_effect=0.0, language_effect=0.0, tokens_per_unit=400
    )
    result = analyse_profile(profile, _quick(auto_groups=False))
    romance = result.groups[0]
    assert romance.test.p_value > 0.05
    assert romance.ci[0] <= 0.0 <= romance.ci[1] or abs(romance.test.statistic) < 1e-3


def test_analysis_refuses_empty_languages_and_notes_missing_members():
    profile = make_profile(n_layers=2, n_experts=8)
    profile.tokens[2] = 0
    with pytest.raises(BabelmoeError, match="no counted tokens"):
        analyse_profile(profile, _quick())
    small = make_profile(PAPER_LANGUAGE_INFO[:5], n_layers=2, n_experts=8)
    small.unit_counts = small.unit_counts.clone()
    result = analyse_profile(
        small, _quick(groups={"Romance": ("fr", "es", "pt", "it")}, n_bootstrap=0)
    )
    assert any("it not profiled" in note for note in result.notes)
    assert math.isnan(result.groups[0].ci[0])  # no bootstrap, no interval
    assert torch.equal(small.counts, small.unit_counts.sum(1))


def test_diff_detects_a_planted_change_and_little_else():
    freq = true_frequency(PAPER_LANGUAGE_INFO, 3, 32, seed=2)
    tuned = freq.copy()
    tuned[:, 1, :4] = np.minimum(tuned[:, 1, :4] + 0.3, 1.0)
    a = make_profile(frequency=freq, seed=1, tokens_per_unit=300)
    b = make_profile(frequency=tuned, seed=2, tokens_per_unit=300)
    result = diff_profiles(a, b, DiffConfig(statistics=StatisticsConfig(n_bootstrap=100)))
    assert result.changed[1, :4].all()
    assert result.changed.sum() - 4 <= 3  # sampling noise alone rarely crosses 3 s.e.
    assert int(np.argmax(result.mean_abs[-1])) == 1 and result.noise_p[-1, 1] < 0.05
    assert (result.correlation[-1, [0, 2]] > 0.95).all()
    assert result.geometry.statistic > 0.9


def test_diff_of_two_samples_of_one_model_stays_within_noise():
    freq = true_frequency(PAPER_LANGUAGE_INFO, 3, 32, seed=4)
    a = make_profile(frequency=freq, seed=1, tokens_per_unit=300)
    b = make_profile(frequency=freq, seed=2, tokens_per_unit=300)
    result = diff_profiles(a, b, DiffConfig(statistics=StatisticsConfig(n_bootstrap=100)))
    assert (result.noise_p[-1] > 0.05).all()  # no layer changes beyond sampling noise
    assert np.allclose(result.mean_abs[-1], result.noise_floor[-1], rtol=0.3)
    same = diff_profiles(a, a, DiffConfig(statistics=StatisticsConfig(n_bootstrap=50)))
    assert (same.mean_abs == 0).all() and (same.noise_p == 1).all() and not same.changed.any()
