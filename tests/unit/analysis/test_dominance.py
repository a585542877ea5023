"""Diagonal dominance over languages (``analysis.stats.dominance``): on constructed matrices
whose answer is known, each test finds a planted effect and none where there is none; the
restricted permutation does not take relatives' shared harm for a language's own."""

from __future__ import annotations

import math

import numpy as np
import pytest

from babelmoe.analysis.stats.dominance import (
    additive_residual,
    beats_every_random,
    diagonal_dominance,
    dominance_interval,
    dominance_test,
    family_out,
    restricted_dominance_test,
    spillover_test,
    weighted_dominance,
)
from babelmoe.analysis.stats.language_resampling import resample_matrix

# 16 languages in 5 families (4, 4, 3, 3 and an isolate), genera splitting two of them
FAMILIES = ["A"] * 4 + ["B"] * 4 + ["C"] * 3 + ["D"] * 3 + [None, "E"]
GENERA = ["A1", "A1", "A2", "A2", "B1", "B1", "B2", "B2", "C", "C", "C", "D", "D", "D", None, "E"]
N = len(FAMILIES)


def _same(labels):
    keys = [("own", i) if x is None else x for i, x in enumerate(labels)]
    return np.array([[a == b for b in keys] for a in keys]) & ~np.eye(len(keys), dtype=bool)


def _noise(seed, scale=0.3):
    return np.random.default_rng(seed).normal(0, scale, (N, N))


def test_diagonal_dominance_permutation_p():
    rng = np.random.default_rng(0)
    n = 7
    noise = rng.normal(0, 0.1, (n, n))
    strong = noise + 2 * np.eye(n)
    test = dominance_test(strong)
    assert test.exact and test.n_permutations == 5040
    assert test.statistic == pytest.approx(diagonal_dominance(strong))
    assert test.statistic > 1.5 and test.p_value == pytest.approx(1 / 5040)
    # additive row and column effects only: every permutation gives the same statistic
    additive = rng.normal(size=(n, 1)) + rng.normal(size=(1, n))
    flat = dominance_test(additive)
    assert abs(flat.statistic) < 1e-12 and flat.p_value == 1.0
    nine = dominance_test(rng.normal(0, 0.1, (9, 9)) + np.eye(9), n_perm=999, seed=1)
    assert not nine.exact and nine.p_value == pytest.approx(1 / 1000)
    null = dominance_test(rng.normal(size=(9, 9)), n_perm=999, seed=2)
    assert null.p_value > 0.01


def test_restricted_permutation_separates_own_harm_from_relatives_harm():
    family = _same(FAMILIES).astype(float)
    # planted: a language's own experts hurt it (3) more than its relatives (2), others (0)
    own = _noise(1) + 2 * family + 3 * np.eye(N)
    test = restricted_dominance_test(own, FAMILIES, "family", n_perm=999)
    assert test.feasible and test.p_value <= 0.002 and test.n_with_relatives == 14
    assert test.relatives == pytest.approx(1, abs=0.2) and test.share_above_relatives > 0.9
    assert 0.5 < test.relatives_lo < test.relatives < test.relatives_hi < 1.5
    assert test.statistic == pytest.approx(diagonal_dominance(own))
    # null: the own language is hurt exactly as much as its relatives (shared harm only). The
    # unrestricted test calls it dominant (Galton's problem); the restricted one does not.
    shared = _noise(2) + 3 * (family + np.eye(N))
    assert dominance_test(shared, n_perm=999).p_value <= 0.002
    null = restricted_dominance_test(shared, FAMILIES, "family", n_perm=999)
    assert null.p_value > 0.05 and null.relatives_lo < 0 < null.relatives_hi
    # genus blocks are smaller: fewer relabelings, listed exactly here (2!^4 * 3!^2 = 576)
    genus = restricted_dominance_test(own, GENERA, "genus", n_perm=999)
    assert genus.exact and genus.n_relabelings == 576 and genus.min_p == pytest.approx(1 / 576)
    assert genus.p_value == pytest.approx(1 / 576)


def test_restricted_permutation_without_relatives_is_not_tested():
    m = _noise(3) + np.eye(N)
    test = restricted_dominance_test(m, list(range(N)), "family")
    assert not test.feasible and math.isnan(test.p_value) and "nothing to relabel" in test.note


def test_weighted_dominance_equals_the_resampled_matrix_without_self_pairs():
    m = _noise(4) + np.eye(N)
    assert weighted_dominance(m, np.ones((1, N)))[0] == pytest.approx(diagonal_dominance(m))
    draws = np.random.default_rng(5).integers(0, N, N)
    weights = np.bincount(draws, minlength=N)[None].astype(float)
    r = resample_matrix(m, draws)
    copy = draws[:, None] == draws[None, :]  # a language and its own copy: no pair
    direct = np.diag(r).mean() - r[~copy].mean()
    assert weighted_dominance(m, weights)[0] == pytest.approx(direct)


def test_language_bootstrap_interval_covers_a_planted_effect_and_zero_under_the_null():
    planted = dominance_interval(_noise(6) + 2 * np.eye(N), n_boot=500)
    assert planted.n_valid == 500 and 1.5 < planted.lo < planted.statistic < planted.hi < 2.5
    null = dominance_interval(_noise(7), n_boot=500)
    assert null.lo < 0 < null.hi
    # one family carries the effect: leaving it out removes it
    carried = _noise(8, 0.05) + 3 * np.diag(np.array(FAMILIES, dtype=object) == "A")
    out = family_out(carried, FAMILIES)
    assert set(out) == {"A", "B", "C", "D"}
    assert abs(out["A"]) < 0.2 and out["B"] > 0.5


def test_spillover_to_relatives():
    family = _same(FAMILIES).astype(float)
    planted = spillover_test(_noise(9) + 1.5 * family + 3 * np.eye(N), FAMILIES, "family", 999)
    assert planted.feasible and planted.n_same_pairs == int(family.sum())
    assert planted.statistic == pytest.approx(planted.same_mean - planted.other_mean)
    assert planted.statistic == pytest.approx(1.5, abs=0.3) and planted.p_value <= 0.002
    assert planted.adjusted_p_value <= 0.002 and planted.lo > 0.5
    null = spillover_test(_noise(10) + 3 * np.eye(N), FAMILIES, "family", 999)
    assert null.p_value > 0.05 and null.lo < 0 < null.hi
    # a fragile, harmful family (its sets hurt every language more, every set hurts its
    # languages more): spillover in the raw matrix, none beyond row and column effects
    fragile = np.zeros(N)
    fragile[:4] = 4.0  # family A
    confounded = _noise(11, 0.05) + fragile[:, None] + fragile[None, :]
    test = spillover_test(confounded, FAMILIES, "family", 999)
    assert test.statistic > 0.3 and test.p_value < 0.05
    assert abs(test.adjusted_statistic) < 0.05 and test.adjusted_p_value > 0.01


def test_spillover_across_scripts_leaves_out_what_a_shared_script_carries():
    # the harm is shared by same-script languages only; families A and B each share a script
    scripts = ["s"] * 4 + ["t"] * 4 + ["u", "v", "w", "x", "y", "z", "q", "r"]
    shared_script = _noise(14) + 2 * _same(scripts) + 3 * np.eye(N)
    raw = spillover_test(shared_script, FAMILIES, "family", 999)
    assert raw.p_value <= 0.01 and raw.statistic > 1  # looks like relatives sharing the harm
    across = spillover_test(
        shared_script, FAMILIES, "family", 999, apart=scripts, apart_name="script"
    )
    assert across.within == "family across scripts" and across.n_same_pairs == 12  # C and D
    assert across.p_value > 0.05 and abs(across.statistic) < 0.3
    # harm shared by relatives whatever their script is still found
    mixed = ["s", "t", "s", "t", "u", "v", "u", "v", "w", "x", "w", "y", "z", "y", "q", "r"]
    related = _noise(15) + 2 * _same(FAMILIES) + 3 * np.eye(N)
    found = spillover_test(related, FAMILIES, "family", 999, apart=mixed, apart_name="script")
    assert found.p_value <= 0.01 and found.statistic == pytest.approx(2, abs=0.4)


def test_additive_residual_removes_row_and_column_effects():
    rng = np.random.default_rng(13)
    additive = rng.normal(size=(N, 1)) + rng.normal(size=(1, N)) + 5 * np.eye(N)
    np.testing.assert_allclose(additive_residual(additive), 0, atol=1e-10)


def test_sign_test_of_own_against_random_sets():
    own = np.array([5.0, 5, 5, 5, 0])
    random = np.array([[1.0, 1, 9, 1, 1], [2, 2, 2, 2, 2], [0, 0, 0, 0, 0]])
    beats, n, p = beats_every_random(own, random)
    assert (beats, n) == (3, 5)
    expected = sum(math.comb(5, x) * 0.25**x * 0.75 ** (5 - x) for x in range(3, 6))
    assert p == pytest.approx(expected)
    assert beats_every_random(np.ones(4), np.zeros((3, 4)))[2] == pytest.approx(0.25**4)
