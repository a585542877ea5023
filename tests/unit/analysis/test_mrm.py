"""MRM on distance matrices, language resampling and restricted permutations: each statistic
against a direct computation on small cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from babelmoe.analysis.stats import language_resampling as lr
from babelmoe.analysis.stats import mrm


def _distance(points: np.ndarray) -> np.ndarray:
    return np.abs(points[:, None] - points[None, :])


def _case(n: int = 9, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Raw response [P] and three raw predictors [P, 3] over the pairs of n languages."""
    rng = np.random.default_rng(seed)
    preds = [_distance(rng.normal(size=n)) for _ in range(3)]
    y = 0.8 * preds[0] + 0.3 * preds[1] + _distance(rng.normal(size=n)) * 0.5
    return mrm.upper(y), np.stack([mrm.upper(p) for p in preds], axis=1)


@pytest.mark.parametrize("ranks", [True, False])
def test_coefficients_equal_lstsq_on_the_unfolded_standardised_matrices(ranks: bool) -> None:
    y, x = _case()
    zy, zx = mrm.standardise(y, ranks), mrm.standardise(x.T, ranks).T
    f = mrm.fit(zy, zx)
    design = np.column_stack([np.ones(len(zy)), zx])
    coef, *_ = np.linalg.lstsq(design, zy, rcond=None)
    assert coef[0] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(f.beta, coef[1:], atol=1e-12)
    resid = zy - design @ coef
    assert f.r2 == pytest.approx(1 - resid @ resid / (zy @ zy))


def test_unique_r2_is_the_r2_lost_without_the_predictor() -> None:
    y, x = _case(seed=1)
    zy, zx = mrm.standardise(y), mrm.standardise(x.T).T
    full = mrm.fit(zy, zx)
    for j in range(3):
        without = mrm.fit(zy, np.delete(zx, j, axis=1))
        assert full.unique[j] == pytest.approx(full.r2 - without.r2, abs=1e-12)
    assert full.joint == pytest.approx(full.r2 - full.unique.sum())


def test_permutation_null_equals_relabeling_the_response() -> None:
    n = 7
    rng = np.random.default_rng(2)
    y_mat = _distance(rng.normal(size=n))
    x_mats = [_distance(rng.normal(size=n)) for _ in range(2)]
    zx = mrm.standardise(np.stack([mrm.upper(m) for m in x_mats])).T
    perms = np.stack([np.arange(n)] + [rng.permutation(n) for _ in range(20)])
    beta, r2 = mrm.permutation_null(
        mrm.standardise(mrm.upper(y_mat))[None], zx, lr.pair_index(perms)
    )
    # the null's distribution over a group equals relabeling the response; check the identity
    # and, for each relabeling pi, that relabeling the predictors by pi equals relabeling the
    # response by pi's inverse
    for k, perm in enumerate(perms):
        inverse = np.argsort(perm)
        relabeled = y_mat[np.ix_(inverse, inverse)]
        direct = mrm.fit(mrm.standardise(mrm.upper(relabeled)), zx)
        np.testing.assert_allclose(beta[k, 0], direct.beta, atol=1e-12)
        assert r2[k, 0] == pytest.approx(direct.r2)


def test_weighted_fit_with_unit_weights_is_the_plain_fit() -> None:
    y, x = _case(seed=3)
    f = mrm.weighted_fit(y[None], x, np.ones((1, len(y))))
    plain = mrm.fit(mrm.standardise(y), mrm.standardise(x.T).T)
    np.testing.assert_allclose(f.beta[0, 0], plain.beta, atol=1e-12)
    np.testing.assert_allclose(f.unique[0, 0], plain.unique, atol=1e-12)


@pytest.mark.parametrize("ranks", [True, False])
def test_language_bootstrap_equals_the_fit_on_resampled_matrices(ranks: bool) -> None:
    """Draw languages with replacement, build the resampled matrices directly, drop the pairs
    of a language with its own copy, fit: the weighted fit gives the same numbers."""
    n = 8
    rng = np.random.default_rng(4)
    y_mat = _distance(rng.normal(size=n)) + _distance(rng.integers(0, 3, size=n) * 1.0)
    x_mats = [_distance(rng.integers(0, 3, size=n) * 1.0), _distance(rng.normal(size=n))]
    draws = lr.bootstrap_draws(n, 5, seed=7)
    assert any(len(set(d)) < n for d in draws)  # copies do occur
    weights = lr.pair_weights(lr.bootstrap_weights(draws, n))
    got = mrm.weighted_fit(
        mrm.upper(y_mat)[None], np.stack([mrm.upper(m) for m in x_mats], 1), weights, ranks
    )
    for b, d in enumerate(draws):
        rows, cols = np.triu_indices(n, 1)
        distinct = d[rows] != d[cols]  # pairs of a language with its own copy drop out
        yb = mrm.upper(lr.resample_matrix(y_mat, d))[distinct]
        xb = np.stack([mrm.upper(lr.resample_matrix(m, d))[distinct] for m in x_mats], 1)
        direct = mrm.fit(mrm.standardise(yb, ranks), mrm.standardise(xb.T, ranks).T)
        np.testing.assert_allclose(got.beta[b, 0], direct.beta, atol=1e-10)
        assert got.r2[b, 0] == pytest.approx(direct.r2)


def test_bootstrap_weights_count_the_drawn_languages() -> None:
    draws = np.array([[0, 0, 2, 3], [1, 1, 1, 1]])
    w = lr.bootstrap_weights(draws, 4)
    np.testing.assert_array_equal(w, [[2, 0, 1, 1], [0, 4, 0, 0]])
    pw = lr.pair_weights(w)  # pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    np.testing.assert_array_equal(pw, [[0, 2, 2, 0, 0, 1], [0] * 6])


def test_jackknife_and_group_out_leave_out_what_they_say() -> None:
    jk = lr.jackknife_weights(5)
    assert [list(np.flatnonzero(row == 0)) for row in jk] == [[i] for i in range(5)]
    families = ["A", "A", "B", None, "B", "C", "A"]
    names, w = lr.group_out_weights(families, min_size=2, min_left=4)
    assert names == ["A", "B"]  # C has one language; None is never left out
    assert list(np.flatnonzero(w[0] == 0)) == [0, 1, 6]
    assert list(np.flatnonzero(w[1] == 0)) == [2, 4]
    # a language with weight 0 takes no part in any pair
    pw = lr.pair_weights(w[:1])[0]
    rows, cols = np.triu_indices(7, 1)
    assert np.all((pw == 0) == (np.isin(rows, [0, 1, 6]) | np.isin(cols, [0, 1, 6])))


def test_jackknife_weights_equal_the_fit_without_the_language() -> None:
    y, x = _case(n=7, seed=5)
    f = mrm.weighted_fit(y[None], x, lr.pair_weights(lr.jackknife_weights(7)))
    rows, cols = np.triu_indices(7, 1)
    for i in range(7):
        keep = (rows != i) & (cols != i)
        direct = mrm.fit(mrm.standardise(y[keep]), mrm.standardise(x[keep].T).T)
        np.testing.assert_allclose(f.beta[i, 0], direct.beta, atol=1e-10)


@pytest.mark.parametrize("exact_limit", [10**6, 10])
def test_restricted_permutations_keep_blocks_intact(exact_limit: int) -> None:
    blocks = ["A", "A", "A", "B", "B", "C", None, "B"]
    plan = lr.BlockPermutations(blocks, n_random=200, seed=0, exact_limit=exact_limit)
    assert plan.n_distinct == math.factorial(3) * math.factorial(3)
    assert plan.exact == (exact_limit >= 36)
    np.testing.assert_array_equal(plan.perms[0], np.arange(8))
    for perm in plan.perms:
        assert sorted(perm) == list(range(8))
        for i, j in enumerate(perm):
            assert blocks[i] == blocks[j] or i == j  # within the block, singletons stay put
        assert perm[5] == 5 and perm[6] == 6
    moved = {tuple(p) for p in plan.perms}
    assert len(moved) == 36  # every within-block relabeling occurs (exactly or by sampling)
    if plan.exact:
        assert plan.n_permutations == 36 and plan.min_p == pytest.approx(1 / 36)
    assert plan.feasible(0.05) and not plan.feasible(0.01)


def test_restricted_permutations_flag_too_few_relabelings() -> None:
    plan = lr.BlockPermutations(["A", "A", "B", "C"], n_random=99, seed=0, exact_limit=1000)
    assert plan.n_distinct == 2 and not plan.feasible(0.05)


def test_planted_effect_is_detected_and_a_null_one_is_not() -> None:
    n = 24
    rng = np.random.default_rng(11)
    a, b = _distance(rng.normal(size=n)), _distance(rng.normal(size=n))
    noise = _distance(rng.normal(size=n))
    y = 1.0 * a + 0.7 * noise  # b plays no part
    zx = mrm.standardise(np.stack([mrm.upper(a), mrm.upper(b)])).T
    perms = np.stack([np.arange(n)] + [rng.permutation(n) for _ in range(499)])
    beta, r2 = mrm.permutation_null(mrm.standardise(mrm.upper(y))[None], zx, lr.pair_index(perms))
    p = mrm.p_values(beta, two_sided=True)[0]
    assert p[0] < 0.01 and p[1] > 0.05
    assert mrm.p_values(r2, two_sided=False)[0] < 0.01


def test_freedman_lane_null_equals_refitting_with_relabeled_reduced_residuals() -> None:
    n = 8
    rng = np.random.default_rng(12)
    a = _distance(rng.normal(size=n))
    b = a + 0.5 * _distance(rng.normal(size=n))  # correlated with a
    y_mat = a + 0.3 * _distance(rng.normal(size=n))
    zy = mrm.standardise(mrm.upper(y_mat))
    zx = mrm.standardise(np.stack([mrm.upper(a), mrm.upper(b)])).T
    perms = np.stack([np.arange(n)] + [rng.permutation(n) for _ in range(15)])
    beta, r2 = mrm.coefficient_null(zy[None], zx, lr.pair_index(perms), "freedman_lane")
    observed = mrm.fit(zy, zx)
    np.testing.assert_allclose(beta[0, 0], observed.beta, atol=1e-12)
    assert r2[0, 0] == pytest.approx(observed.r2)
    rows, cols = np.triu_indices(n, 1)
    for j in range(2):
        rest = zx[:, [1 - j]]
        fitted = rest @ np.linalg.lstsq(rest, zy, rcond=None)[0]
        resid = np.zeros((n, n))
        resid[rows, cols] = zy - fitted
        resid = resid + resid.T
        for k, perm in enumerate(perms):
            inverse = np.argsort(perm)
            y_star = fitted + mrm.upper(resid[np.ix_(inverse, inverse)])
            coef = np.linalg.lstsq(np.column_stack([np.ones(len(y_star)), zx]), y_star, rcond=None)
            assert beta[k, 0, j] == pytest.approx(coef[0][1 + j], abs=1e-10)


def test_freedman_lane_does_not_credit_a_bystander_correlated_with_the_cause() -> None:
    """b correlates with the cause a but adds nothing: Freedman-Lane keeps b's p-value
    roughly uniform, where relabeling the whole response is the joint null's test."""
    n = 20
    rng = np.random.default_rng(13)
    hits = {"freedman_lane": 0, "response": 0}
    for _ in range(12):
        a = _distance(rng.normal(size=n))
        b = a + _distance(rng.normal(size=n))
        y = a + 0.6 * _distance(rng.normal(size=n))
        zx = mrm.standardise(np.stack([mrm.upper(a), mrm.upper(b)])).T
        perms = np.stack([np.arange(n)] + [rng.permutation(n) for _ in range(199)])
        for method in hits:
            beta, _ = mrm.coefficient_null(
                mrm.standardise(mrm.upper(y))[None], zx, lr.pair_index(perms), method
            )
            hits[method] += int(mrm.p_values(beta, two_sided=True)[0, 1] < 0.05)
    assert hits["freedman_lane"] <= 3


@pytest.mark.parametrize("method", ["freedman_lane", "response"])
def test_streamed_p_values_equal_the_p_values_of_the_whole_null(method: str) -> None:
    n = 9
    rng = np.random.default_rng(14)
    y = np.stack([mrm.upper(_distance(rng.normal(size=n))) for _ in range(3)])
    zx = mrm.standardise(np.stack([mrm.upper(_distance(rng.normal(size=n))) for _ in range(2)])).T
    perms = np.stack([np.arange(n)] + [rng.permutation(n) for _ in range(300)])
    idx = lr.pair_index(perms)
    beta, r2 = mrm.coefficient_null(mrm.standardise(y), zx, idx, method)
    p_beta, p_r2 = mrm.permutation_p_values(mrm.standardise(y), zx, idx, method)
    np.testing.assert_array_equal(p_beta, mrm.p_values(beta, two_sided=True))
    np.testing.assert_array_equal(p_r2, mrm.p_values(r2, two_sided=False))
