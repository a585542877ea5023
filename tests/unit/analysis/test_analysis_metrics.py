"""Similarity metrics, genealogy distances, shared/specific experts and ARI on hand-made cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from babelmoe.analysis import experts as ex
from babelmoe.analysis.config import AnalysisConfig
from babelmoe.analysis.genealogy import (
    genealogical_distance,
    metadata_groups,
    resolve_members,
    script_distance,
)
from babelmoe.analysis.stats.metrics import METRICS, as_distance, pairwise
from babelmoe.analysis.stats.stability import adjusted_rand_index, partition_agreement
from babelmoe.errors import BabelmoeError
from babelmoe.testing import PAPER_LANGUAGE_INFO


def test_euclidean_and_cosine_by_hand():
    x = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    assert pairwise(x, "euclidean")[0, 1] == pytest.approx(5.0)
    assert pairwise(x, "euclidean")[1, 2] == pytest.approx(math.sqrt(4 + 16))
    cos = pairwise(np.array([[1.0, 0.0], [1.0, 1.0]]), "cosine")
    assert cos[0, 1] == pytest.approx(1 / math.sqrt(2))
    assert np.isnan(pairwise(x, "cosine")[0, 1])  # a zero vector has no direction


def test_kl_both_directions_by_hand():
    x = np.array([[1.0, 1.0], [1.0, 3.0]])  # p = (.5, .5), q = (.25, .75)
    kl = pairwise(x, "kl", kl_epsilon=1e-12)
    assert kl[0, 1] == pytest.approx(0.5 * 1 + 0.5 * math.log2(0.5 / 0.75), abs=1e-9)
    assert kl[1, 0] == pytest.approx(0.25 * -1 + 0.75 * math.log2(1.5), abs=1e-9)
    assert kl[0, 0] == pytest.approx(0.0, abs=1e-12)
    disjoint = pairwise(np.array([[1.0, 0.0], [0.0, 1.0]]), "kl", kl_epsilon=1e-6)
    assert np.isfinite(disjoint).all() and disjoint[0, 1] > 15  # smoothing keeps it finite


def test_jensen_shannon_by_hand():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 2.0]])
    js = pairwise(x, "jensen_shannon")
    assert js[0, 1] == pytest.approx(1.0)  # disjoint supports: 1 bit
    h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert js[0, 2] == pytest.approx(h - 0.5, abs=1e-12)  # H(m) - (H(p) + H(q)) / 2
    assert js[2, 3] == pytest.approx(0.0, abs=1e-12)  # scale does not matter
    assert np.allclose(js, js.T)


def test_correlations_by_hand_and_against_scipy():
    x = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [3.0, 2.0, 1.0], [1.0, 4.0, 9.0]])
    pearson, spearman = pairwise(x, "pearson"), pairwise(x, "spearman")
    assert pearson[0, 1] == pytest.approx(1.0) and pearson[0, 2] == pytest.approx(-1.0)
    assert pearson[0, 3] < 0.99 and spearman[0, 3] == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    ties = rng.integers(0, 4, size=(3, 40)).astype(float)
    got = pairwise(ties, "spearman")
    assert got[0, 1] == pytest.approx(spearmanr(ties[0], ties[1]).statistic)
    assert got[1, 2] == pytest.approx(spearmanr(ties[1], ties[2]).statistic)


@pytest.mark.parametrize("metric", list(METRICS))
def test_batched_equals_per_slice_and_distance_is_symmetric(metric):
    rng = np.random.default_rng(1)
    x = rng.random((2, 3, 4, 10))  # [B, L, n, d]
    batched = pairwise(x, metric)
    assert batched.shape == (2, 3, 4, 4)
    assert np.allclose(batched[1, 2], pairwise(x[1, 2], metric))
    d = as_distance(batched, metric)
    assert np.allclose(d, np.swapaxes(d, -1, -2)) and np.allclose(d[..., 0, 0], 0.0)


def test_genealogical_distance_follows_the_tree_and_is_ultrametric():
    langs = PAPER_LANGUAGE_INFO
    d = genealogical_distance(langs)
    i = {lang["code"]: k for k, lang in enumerate(langs)}
    assert d[i["es"], i["pt"]] < d[i["fr"], i["es"]] < d[i["en"], i["fr"]] < d[i["en"], i["zh"]]
    assert d[i["en"], i["zh"]] == 1.0 and np.allclose(d, d.T) and np.allclose(np.diag(d), 0)
    for a, b, c in itertools.permutations(range(len(langs)), 3):
        assert d[a, c] <= max(d[a, b], d[b, c]) + 1e-12
    s = script_distance(langs)
    assert s[i["en"], i["fr"]] == 0 and s[i["ar"], i["ur"]] == 0 and s[i["hi"], i["ur"]] == 1


def test_group_members_match_iso_or_bcp47_codes():
    langs = [
        {**lang, "code": code3}
        for lang, code3 in zip(
            PAPER_LANGUAGE_INFO,
            ["eng", "fra", "spa", "por", "zho", "arb", "hin", "ben", "urd"],
            strict=True,
        )
    ]
    found, missing = resolve_members(langs, ["fr", "spa", "Portuguese", "xx"])
    assert found == [1, 2, 3] and missing == ["xx"]
    groups = metadata_groups(langs)
    assert groups["Romance genus"] == [1, 2, 3] and groups["Indic genus"] == [6, 7, 8]
    assert "Indo-European family" in groups  # 7 members, 2 others


def _hand_frequencies() -> np.ndarray:
    # [3 languages, 2 layers, 4 experts]
    freq = np.zeros((3, 2, 4))
    freq[:, 0, 0] = [0.10, 0.20, 0.06]  # shared
    freq[:, 0, 1] = [0.30, 0.00, 0.005]  # specific to language 0
    freq[:, 0, 2] = [0.30, 0.02, 0.00]  # high in 0 but 0.02 > low elsewhere: not specific
    freq[:, 1, :] = 0.07  # every expert of layer 1 shared
    freq[:, 1, 3] = [0.00, 0.08, 0.09]  # specific to the group {1, 2}
    return freq


def test_shared_and_specific_counts_on_a_hand_made_profile():
    freq = _hand_frequencies()
    assert ex.shared_mask(freq, 0.05).sum(-1).tolist() == [1, 3]
    spec = ex.specific_mask(freq, 0.05, 0.01)
    assert spec.sum(axis=(1, 2)).tolist() == [1, 0, 0] and spec[0, 0, 1]
    group = ex.group_specific_mask(freq, [1, 2], 0.05, 0.01)
    assert np.argwhere(group).tolist() == [[1, 3]]
    assert ex.centre_of_mass(np.array([0, 2, 2, 0])) == pytest.approx(1.5)
    assert np.isnan(ex.centre_of_mass(np.zeros(3)))


def test_lape_entropy_and_selection():
    freq = np.full((3, 1, 5), 0.1)
    freq[:, 0, 4] = [0.9, 0.0, 0.0]
    entropy = ex.lape_entropy(freq)
    assert entropy[0, 0] == pytest.approx(math.log(3)) and entropy[0, 4] == pytest.approx(0.0)
    mask, tau = ex.lape_specific(freq, filter_quantile=0.9, entropy_quantile=0.2)
    assert np.argwhere(mask).tolist() == [[0, 0, 4]] and 0.0 < tau <= 0.9


def test_adjusted_rand_index_known_values():
    a = np.array([0, 0, 1, 1])
    assert adjusted_rand_index(a, a) == pytest.approx(1.0)
    assert adjusted_rand_index(a, np.array([5, 5, 3, 3])) == pytest.approx(1.0)  # renamed
    assert adjusted_rand_index(a, np.array([0, 0, 1, 2])) == pytest.approx(4 / 7)
    assert adjusted_rand_index([0, 1, 0, 1], [0, 0, 1, 1]) == pytest.approx(-0.5)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 8, 4000), rng.integers(0, 8, 4000)
    assert abs(adjusted_rand_index(x, y)) < 0.01
    sklearn = pytest.importorskip("sklearn.metrics")
    assert adjusted_rand_index(x[:50], y[:50]) == pytest.approx(
        sklearn.adjusted_rand_score(x[:50], y[:50])
    )
    pairs, ari = partition_agreement([np.stack([x, y]), np.stack([x, x]), np.stack([y, y])])
    assert pairs == [(0, 1), (0, 2), (1, 2)] and ari.shape == (3, 2)
    assert ari[0, 0] == pytest.approx(1.0)


def test_config_validation_messages():
    with pytest.raises(BabelmoeError, match="unknown metric"):
        AnalysisConfig(primary_metric="manhattan")
    with pytest.raises(BabelmoeError, match="specific_low must be below"):
        AnalysisConfig(specific_low=0.2, specific_high=0.1)
    with pytest.raises(BabelmoeError, match="fewer than 2"):
        AnalysisConfig(groups={"solo": ("fr",)})
    assert "pearson" in AnalysisConfig(metrics=("cosine",), primary_metric="pearson").metrics
