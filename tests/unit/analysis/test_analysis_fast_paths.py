"""The analysis' vectorised paths give exactly what their plain versions give.

Ranks (one sort for all rows) against scipy's rankdata, the specific-expert mask (two running
maxima) against deleting each language, the bootstrap in threads against one thread, percentile
intervals (percentile when there is no NaN) against nanpercentile, and p-values counted
against the mean of the indicator.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

from babelmoe.analysis.experts import specific_mask
from babelmoe.analysis.stats.bootstrap import percentile_interval, run_bootstrap
from babelmoe.analysis.stats.metrics import average_ranks, pairwise
from babelmoe.analysis.stats.permutation import _from_null
from babelmoe.testing import make_profile


@pytest.mark.parametrize("shape", [(1,), (7,), (3, 11), (4, 2, 50), (2, 0)])
def test_average_ranks_equal_scipy_with_ties(shape):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, size=shape) / 3.0  # many ties
    assert np.array_equal(average_ranks(x), rankdata(x, axis=-1))


def test_average_ranks_nan_rows_and_continuous_values():
    rng = np.random.default_rng(1)
    x = rng.random((5, 9))
    x[1, 4] = np.nan
    x[3] = x[3].round(1)
    assert np.array_equal(average_ranks(x), rankdata(x, axis=-1), equal_nan=True)
    assert np.isnan(average_ranks(x)[1]).all()


def _specific_by_deletion(freq: np.ndarray, high: float, low: float) -> np.ndarray:
    out = np.zeros(freq.shape, dtype=bool)
    for i in range(freq.shape[-3]):
        others = np.delete(freq, i, axis=-3).max(axis=-3)
        out[..., i, :, :] = (freq[..., i, :, :] >= high) & (others <= low)
    return out


@pytest.mark.parametrize("n", [2, 3, 9])
def test_specific_mask_equals_deleting_each_language(n):
    rng = np.random.default_rng(n)
    freq = rng.choice([0.0, 0.005, 0.01, 0.02, 0.05, 0.2], size=(4, n, 3, 16))
    freq[0, 0, 0, 0] = np.nan
    expected = _specific_by_deletion(freq, 0.05, 0.01)
    assert np.array_equal(specific_mask(freq, 0.05, 0.01), expected)
    assert np.array_equal(specific_mask(freq[1], 0.05, 0.01), expected[1])


def test_bootstrap_in_threads_equals_one_thread():
    profile = make_profile(n_layers=2, n_experts=16, n_units=6, seed=3)
    counts, tokens = profile.unit_counts.numpy(), profile.unit_tokens.numpy()

    def statistic(freq):
        n = freq.shape[1]
        return {"js": pairwise(freq.reshape(freq.shape[0], n, -1), "jensen_shannon")}

    args = (counts, tokens, statistic, 230, 7, 40)
    one = run_bootstrap(*args, workers=1)
    many = run_bootstrap(*args, workers=3)
    assert one["js"].shape[0] == 230
    assert np.array_equal(one["js"], many["js"])
    assert run_bootstrap(counts, tokens, statistic, 0, 7) == {}


@pytest.mark.parametrize("nan", [False, True])
def test_percentile_interval_equals_nanpercentile(nan):
    rng = np.random.default_rng(4)
    samples = rng.random((200, 3, 4))
    if nan:
        samples[:, 0, 0] = np.nan  # all NaN: no interval
        samples[::3, 1, 2] = np.nan  # some NaN: from the others
    flat = samples.reshape(200, -1)
    finite = ~np.isnan(flat).all(axis=0)
    expected = np.full((2, 12), np.nan)
    tail = 100.0 * (1.0 - 0.9) / 2.0
    expected[:, finite] = np.nanpercentile(flat[:, finite], [tail, 100.0 - tail], axis=0)
    out = percentile_interval(samples, 0.9)
    assert np.array_equal(out.reshape(2, -1), expected, equal_nan=True)


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_p_values_equal_the_mean_of_the_indicator(alternative):
    rng = np.random.default_rng(5)
    null = np.round(rng.standard_normal(999), 1)
    null[0] = 0.3
    test = _from_null(null, 0.3, alternative, exact=True)
    if alternative == "greater":
        assert test.p_value == float(np.mean(null >= 0.3 - 1e-10))
        assert test.min_p == float(np.mean(null >= null.max() - 1e-10))
    else:
        assert test.p_value == float(np.mean(null <= 0.3 + 1e-10))
        assert test.min_p == float(np.mean(null <= null.min() + 1e-10))
    assert isinstance(test.p_value, float) and test.n_permutations == 999
