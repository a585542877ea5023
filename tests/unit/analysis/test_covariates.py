"""Covariates: reference distances, measured covariates and their artifact (no model here)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from babelmoe.analysis import covariates as cv
from babelmoe.analysis.genealogy import genealogical_distance
from babelmoe.testing import PAPER_LANGUAGE_INFO


def _lang(code, family, lineage, scripts):
    return {
        "code": code,
        "family": family,
        "genus": lineage[1] if len(lineage) > 1 else family,
        "classification": lineage,
        "script": next(iter(scripts)),
        "script_code": next(iter(scripts)),
        "scripts": scripts,
    }


def _check(matrix: np.ndarray, n: int) -> None:
    assert matrix.shape == (n, n) and matrix.dtype == np.float64
    assert np.isfinite(matrix).all()
    np.testing.assert_array_equal(matrix, matrix.T)
    np.testing.assert_array_equal(np.diag(matrix), 0.0)


def test_every_distance_is_symmetric_zero_diagonal_finite():
    langs = PAPER_LANGUAGE_INFO
    n = len(langs)
    rng = np.random.default_rng(0)
    counts = [cv.TokenCounts.from_ids(rng.integers(0, 50, size=200)) for _ in range(n)]
    cov = cv.compute_covariates(
        langs,
        tokens_per_byte=rng.uniform(0.1, 0.5, n),
        bits_per_byte=rng.uniform(0.5, 3.0, n),
        token_counts=counts,
        coordinates=[
            (float(rng.uniform(-60, 60)), float(rng.uniform(-180, 180))) for _ in range(n)
        ],
    )
    assert set(cov.distances) == set(cv.DISTANCES)
    assert cov.languages == [lang["code"] for lang in langs]
    for name, matrix in cov.distances.items():
        _check(matrix, n)
        assert name in cov.sources
    assert {"tokens_per_byte", "bits_per_byte"} <= set(cov.features)
    assert cov.notes == []


def test_missing_inputs_drop_the_distance_with_a_note():
    langs = PAPER_LANGUAGE_INFO[:4]
    cov = cv.compute_covariates(
        langs,
        tokens_per_byte=[0.2, 0.3, float("nan"), 0.25],
        coordinates=[(0, 0), None, (1, 1), (2, 2)],
    )
    for name in ("fertility", "familiarity", "token_overlap", "geography"):
        assert name not in cov.distances
    assert any("fertility" in note and "es" in note for note in cov.notes)
    assert any("geography" in note and "fr" in note for note in cov.notes)
    assert math.isnan(cov.features["bits_per_byte"][0])
    for name in ("script", "script_letters", "script_binary", "genealogy", "genealogy_lineage"):
        _check(cov.distances[name], 4)


def test_graded_script_knows_latin_and_cyrillic_share_an_ancestor():
    assert cv.script_tree_distance("Latn", "Cyrl") < cv.script_tree_distance("Latn", "Tibt")
    assert cv.script_tree_distance("Latn", "Tibt") < cv.script_tree_distance("Latn", "Hani") == 1.0
    assert cv.script_tree_distance("Deva", "Beng") < cv.script_tree_distance("Deva", "Taml")
    assert cv.script_tree_distance("Latin", "Latn") == 0.0  # names and codes alike
    langs = [
        _lang("eng", "IE", ["IE", "Germanic"], {"Latn": 1.0}),
        _lang("rus", "IE", ["IE", "Balto-Slavic"], {"Cyrl": 1.0}),
        _lang("bod", "ST", ["ST", "Bodic"], {"Tibt": 1.0}),
        _lang("jpn", "Japonic", ["Japonic"], {"Hani": 0.47, "Hira": 0.43, "Kana": 0.10}),
        _lang("cmn", "ST", ["ST", "Sinitic"], {"Hani": 1.0}),
    ]
    d = cv.script_distances(langs)
    graded, letters, binary = d["script"], d["script_letters"], d["script_binary"]
    assert graded[0, 1] < graded[0, 2]  # Latin-Cyrillic closer than Latin-Tibetan
    assert letters[0, 1] == letters[0, 2] == binary[0, 1] == binary[0, 2] == 1.0  # the old ones
    # Japanese is partly Han: 53% of its letters move from kana to Han at ground distance 1/3..1/2
    assert 0.0 < graded[3, 4] < letters[3, 4] == pytest.approx(0.53)
    assert binary[3, 4] == 0.0  # majority script Han for both


def test_earth_movers_distance_against_a_direct_transport():
    p, q = {"Latn": 0.5, "Cyrl": 0.5}, {"Grek": 0.25, "Hani": 0.75}
    # by hand: min-cost plan moving 0.25 to Grek (cheapest from Latn or Cyrl, both 1 - 6/7) and
    # 0.75 to Hani (cost 1)
    expected = 0.25 * cv.script_tree_distance("Latn", "Grek") + 0.75
    assert cv.earth_movers_distance(p, q) == pytest.approx(expected)
    assert cv.earth_movers_distance(p, p) == 0.0
    assert cv.earth_movers_distance({}, p) == 1.0
    # a 0/1 ground distance gives the overlap (total variation) distance
    zero_one = lambda a, b: float(a != b)  # noqa: E731
    r, s = {"a": 0.2, "b": 0.5, "c": 0.3}, {"a": 0.6, "d": 0.1, "c": 0.3}
    assert cv.earth_movers_distance(r, s, zero_one) == pytest.approx(0.5)


def test_graded_genealogy_normalises_within_each_family():
    deep = ["D", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9", "d10"]
    langs = [
        _lang("a1", "D", [*deep, "x"], {"Latn": 1.0}),  # a1, a2: sisters, 13-node paths
        _lang("a2", "D", [*deep, "x"], {"Latn": 1.0}),
        _lang("a3", "D", ["D", "e1", "e2"], {"Latn": 1.0}),  # splits from a1 at the root
        _lang("a4", "D", ["D", "e1", "e2"], {"Latn": 1.0}),  # a3's sister in a shallow branch
        _lang("b1", "S", ["S", "s1"], {"Latn": 1.0}),
        _lang("b2", "S", ["S", "s2"], {"Latn": 1.0}),  # splits from b1 at the root
        _lang("c1", "Iso", [], {"Latn": 1.0}),  # an isolate
    ]
    g = cv.graded_genealogical_distance(langs)
    _check(g, 7)
    # a root split is 0.5 in both families, however deep each is
    assert g[0, 2] == pytest.approx(0.5) and g[4, 5] == pytest.approx(0.5)
    # sisters: 0.5 / (D - 1), D the deeper path, in the deep and the shallow branch alike
    assert g[0, 1] == pytest.approx(0.5 / 12) and g[2, 3] == pytest.approx(0.5 / 3)
    assert (g[:4, 4:] == 1.0).all() and (g[6, :6] == 1.0).all()
    # the old measure puts the shallow family's root split near "different families"
    old = genealogical_distance(langs)
    assert old[4, 5] > 0.9 and old[0, 2] > 0.9
    # one depth per family as an option: the shallow branch's sisters move apart
    g2 = cv.graded_genealogical_distance(langs, {"D": 13, "S": 5})
    assert g2[2, 3] == pytest.approx(0.5 * (13 - 3) / 12) and g2[4, 5] == pytest.approx(0.5)
    assert g2[0, 1] == g[0, 1]


def test_fertility_familiarity_and_token_overlap_on_hand_made_counts():
    langs = PAPER_LANGUAGE_INFO[:3]
    a = cv.TokenCounts.from_ids([1, 1, 2, 3])  # p = 1/2, 1/4, 1/4
    b = cv.TokenCounts.from_ids([1, 4, 4, 4])  # p = 1/4, 0, 0, 3/4
    c = cv.TokenCounts.from_ids([7])
    assert cv.token_overlap_distance(a, b) == pytest.approx(0.75)
    assert cv.token_overlap_distance(a, a) == 0.0
    cov = cv.compute_covariates(
        langs,
        tokens_per_byte=[0.25, 0.5, 1.0],
        bits_per_byte=[1.0, 1.5, 4.0],
        token_counts=[a, b, c],
        coordinates=[(0.0, 0.0), (0.0, 90.0), (0.0, 0.0)],
    )
    np.testing.assert_allclose(cov.distances["fertility"][0], [0, math.log(2), math.log(4)])
    np.testing.assert_allclose(cov.distances["familiarity"][0], [0, 0.5, 3.0])
    np.testing.assert_allclose(cov.distances["token_overlap"][0], [0, 0.75, 1.0])
    # on a parallel corpus: tokens for the same content, not tokens per byte
    same = cv.compute_covariates(
        langs, tokens_per_byte=[0.25, 0.5, 1.0], parallel_tokens=[10, 10, 40]
    )
    np.testing.assert_allclose(same.distances["fertility"][0], [0, 0, math.log(4)])
    assert "same profiled documents" in same.sources["fertility"]
    bits = cv.compute_covariates(
        langs, bits_per_byte=[1.0, 1.5, 4.0], parallel_bits=[100, 400, 100]
    )
    np.testing.assert_allclose(bits.distances["familiarity"][0], [0, math.log(4), 0])
    assert "same held-out documents" in bits.sources["familiarity"]
    assert "tokens/byte" in cov.sources["fertility"]
    quarter = 2 * math.pi * cv.EARTH_RADIUS_KM / 4 / 1000
    np.testing.assert_allclose(cov.distances["geography"][0], [0, quarter, 0])


def test_save_load_round_trip(tmp_path):
    langs = PAPER_LANGUAGE_INFO[:4]
    counts = [cv.TokenCounts.from_ids([i, i + 1, 5]) for i in range(4)]
    cov = cv.compute_covariates(
        langs,
        ["en", "fr", "es", "pt"],
        tokens_per_byte=[0.2, 0.25, 0.3, 0.35],
        bits_per_byte=[1.0, float("nan"), 1.2, 1.3],
        token_counts=counts,
    )
    assert cv.load_covariates(tmp_path) is None
    cv.save_covariates(tmp_path, cov, {"model": {"name": "m"}})
    back = cv.load_covariates(tmp_path)
    assert back is not None
    assert back.languages == cov.languages and back.sources == cov.sources
    assert back.notes == cov.notes and back.categories == cov.categories
    assert list(back.distances) == list(cov.distances)
    for k in cov.distances:
        np.testing.assert_array_equal(back.distances[k], cov.distances[k])
    for k in cov.features:
        np.testing.assert_array_equal(back.features[k], cov.features[k])
    table = (tmp_path / "covariates" / "languages.csv").read_text().splitlines()
    assert table[0].startswith("language,family,genus,script,tokens_per_byte,bits_per_byte")
    assert table[2].split(",")[-1] == ""  # fr: bits/byte not measured
    assert len(table) == 5
