"""Family against script (partial Mantel, bootstrap) and the null model of shared experts."""

from __future__ import annotations

import numpy as np
import pytest

from babelmoe.analysis import expert_null as en
from babelmoe.analysis import script_genealogy as sg
from babelmoe.analysis.config import StatisticsConfig
from babelmoe.testing import PAPER_LANGUAGE_INFO, make_profile

FAST = {
    "statistics": StatisticsConfig(n_permutations=199, exact_limit=1000, n_bootstrap=40),
    "batch_size": 20,
}


def _languages() -> list[dict]:
    langs = [dict(lang) for lang in PAPER_LANGUAGE_INFO]
    for lang in langs:
        lang["scripts"] = {lang["script"]: 1.0}
    return langs


def _frequency(langs: list[dict], by: str, n_layers: int = 4, n_experts: int = 32) -> np.ndarray:
    """Frequencies that depend only on ``by`` (script or family) plus a little noise."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.02, 0.2, (n_layers, n_experts))
    offsets: dict[str, np.ndarray] = {}
    out = []
    for lang in langs:
        key = str(lang[by])
        if key not in offsets:
            offsets[key] = rng.normal(0.0, 0.05, (n_layers, n_experts))
        noise = rng.normal(0.0, 0.002, (n_layers, n_experts))
        out.append(np.clip(base + offsets[key] + noise, 0.001, 0.9))
    return np.stack(out)


def test_script_distance_matrix_uses_distributions() -> None:
    langs = [
        {"code": "cmn", "scripts": {"Hani": 1.0}},
        {"code": "jpn", "scripts": {"Hira": 0.53, "Hani": 0.47}},
        {"code": "eng", "script_code": "Latn"},  # old metadata: majority label only
    ]
    d = sg.script_distance_matrix(langs)
    assert d[0, 1] == pytest.approx(0.53) and d[1, 0] == d[0, 1]
    assert d[0, 2] == 1.0 and d[1, 2] == 1.0 and np.all(np.diag(d) == 0)


@pytest.mark.parametrize(("driver", "wins"), [("script", "script"), ("family", "genealogy")])
def test_the_driving_reference_wins(driver: str, wins: str) -> None:
    langs = _languages()
    profile = make_profile(langs, frequency=_frequency(langs, driver), n_units=8)
    result = sg.script_genealogy(profile, sg.ScriptGenealogyConfig(**FAST))
    loses = "genealogy" if wins == "script" else "script"
    model = result.model
    assert model.partial[wins].statistic > model.partial[loses].statistic
    assert model.partial[wins].p_value < 0.05
    assert model.partial_ci[wins][0] > 0  # the interval of the winner excludes 0
    assert len(result.layers) == 4 and all(x.p_holm for x in result.layers)
    assert (model.difference > 0) == (wins == "script")
    # leaving out Indo-European (7 of 9) would leave too few languages to compare
    assert result.leave_one_family_out == {}
    assert set(result.genus) == {"script", "genus"}  # the test again with genus as genealogy
    assert model.unique[wins] > model.unique[loses]
    summary = sg.summary(result, sg.ScriptGenealogyConfig(**FAST))
    assert summary["n_languages"] == 9 and len(summary["layers"]) == 4
    assert "partial Mantel" in summary["findings"][0]
    rows = sg.layer_rows(result, 0.05)
    assert len(rows) == 2 * 5 and {r["reference"] for r in rows} == {"script", "genealogy"}


def test_contrasts_and_labels_from_the_corpus() -> None:
    langs = _languages()
    profile = make_profile(langs, frequency=_frequency(langs, "script"), n_units=8)
    labels = [lang["code"] for lang in langs]
    profile.meta["corpus"] = {"labels": labels}
    cfg = sg.ScriptGenealogyConfig(**FAST, contrasts=(("hi", "ur"), ("xx", "en")))
    result = sg.script_genealogy(profile, cfg)
    assert result.labels == labels
    (c,) = result.contrasts  # the pair with an unprofiled label is skipped
    # Devanagari and Arabic share Aramaic as ancestor in the graded (default) script measure
    assert (c.a, c.b, c.script) == ("hi", "ur", 0.5)
    assert 0.0 <= c.rank <= 1.0 and c.ci[0] <= c.distance <= c.ci[1]
    binary = sg.ScriptGenealogyConfig(
        **FAST, contrasts=(("hi", "ur"),), script_measure="script_binary"
    )
    (c,) = sg.script_genealogy(profile, binary).contrasts
    assert c.script == 1.0
    assert (
        sg.summary(sg.script_genealogy(profile, binary), binary)["measures"]["script"]["measure"]
        == "script_binary"
    )


def test_needs_four_languages_and_two_references() -> None:
    from babelmoe.errors import BabelmoeError

    langs = _languages()[:3]
    with pytest.raises(BabelmoeError, match="at least 4"):
        sg.script_genealogy(
            make_profile(langs, n_layers=2, n_experts=8), sg.ScriptGenealogyConfig(**FAST)
        )


# --- null model of shared and specific experts ---------------------------------------------


def test_expectations_are_exact_and_match_the_draws() -> None:
    rng = np.random.default_rng(3)
    freq = rng.uniform(0.0, 0.12, (4, 3, 40))
    cfg = en.ExpertNullConfig(n_draws=2000)
    result = en.expert_null(freq, cfg)
    k = (freq >= 0.05).sum(axis=-1)  # [n, L]
    assert result.shared_expected == pytest.approx(40 * np.prod(k / 40, axis=0))
    draws = []  # the null's mean count, drawn again by hand
    for _ in range(300):
        perm = np.stack([[rng.permutation(row) for row in lang] for lang in freq])
        draws.append((perm >= 0.05).all(axis=0).sum(axis=-1))
    assert np.mean(draws, axis=0) == pytest.approx(result.shared_expected, rel=0.15, abs=0.3)
    assert np.all((result.shared_p > 0) & (result.shared_p <= 1))
    assert result.selection_share.sum() == pytest.approx(1.0)


def test_aligned_experts_beat_the_null_and_the_peak_moves() -> None:
    n, n_layers, n_experts = 6, 3, 50
    rng = np.random.default_rng(0)
    freq = np.full((n, n_layers, n_experts), 0.02)
    # layer 0: every language has 30 frequent experts, but each its own (no alignment);
    for i in range(n):
        freq[i, 0, rng.permutation(n_experts)[:30]] = 0.08
    # layer 2: 10 frequent experts, the same ones in every language.
    freq[:, 2, :10] = 0.08
    cfg = en.ExpertNullConfig(n_draws=300)
    result = en.expert_null(freq, cfg)
    assert result.shared[2] == 10 and result.shared_p[2] < 0.01
    assert result.shared_expected[2] == pytest.approx(50 * 0.2**6)
    assert result.shared_p[0] > 0.05  # whatever layer 0 shares is chance
    summary = en.summary(result, cfg)
    assert summary["shared"]["peak_layer_excess"] == 2
    rows = en.layer_rows(result)
    assert len(rows) == 2 * n_layers and rows[0]["kind"] == "shared"


def test_specific_expectation() -> None:
    freq = np.zeros((3, 1, 10))
    freq[0, 0, :2] = 0.1  # 2 high experts in language 0, the others all low
    expected = en.expected_specific(freq, 0.05, 0.01)
    assert expected[0, 0] == pytest.approx(10 * 0.2 * 1.0 * 1.0)
    assert expected[1, 0] == 0.0
    result = en.expert_null(freq, en.ExpertNullConfig(n_draws=50))
    assert result.specific[0] == 2 and result.specific_expected[0] == pytest.approx(2.0)


def test_given_distance_samples_replace_the_bootstrap() -> None:
    langs = _languages()
    profile = make_profile(langs, frequency=_frequency(langs, "script"), n_units=8)
    cfg = sg.ScriptGenealogyConfig(**FAST)
    first = sg.script_genealogy(profile, cfg)
    # resamples that all equal the observed distances: every interval is the point estimate
    freq = profile.frequency.numpy()
    from babelmoe.analysis.stats.metrics import as_distance, pairwise

    whole = as_distance(pairwise(freq.reshape(9, -1), "jensen_shannon"), "jensen_shannon")
    layers = as_distance(pairwise(np.swapaxes(freq, 0, 1), "jensen_shannon"), "jensen_shannon")
    samples = (np.repeat(whole[None], 5, axis=0), np.repeat(layers[None], 5, axis=0))
    again = sg.script_genealogy(profile, cfg, distance_samples=samples)
    assert again.n_bootstrap == 5
    lo, hi = again.model.partial_ci["script"]
    assert lo == pytest.approx(first.model.partial["script"].statistic) == pytest.approx(hi)


def test_hypergeometric_draws_have_the_permutation_distribution() -> None:
    rng = np.random.default_rng(5)
    freq = rng.choice([0.0, 0.03, 0.08], size=(4, 2, 12), p=[0.5, 0.2, 0.3])
    cfg = en.ExpertNullConfig(n_draws=4000)
    shared, specific = en.null_draws(freq, cfg, np.random.default_rng(1), 4000)
    brute_shared, brute_specific = [], []
    for _ in range(4000):
        perm = np.stack([[rng.permutation(row) for row in lang] for lang in freq])
        brute_shared.append((perm >= 0.05).all(axis=0).sum(axis=-1))
        brute_specific.append(en._specific_counts(perm, cfg))
    for fast, brute in ((shared, brute_shared), (specific, brute_specific)):
        brute = np.asarray(brute)
        assert fast.mean(axis=0) == pytest.approx(brute.mean(axis=0), abs=0.08)
        assert fast.std(axis=0) == pytest.approx(brute.std(axis=0), abs=0.08)
    assert specific.mean(axis=0) == pytest.approx(
        en.expected_specific(freq, 0.05, 0.01).sum(axis=0), abs=0.08
    )
    # the fast count of specific experts equals the per-language mask's
    from babelmoe.analysis.experts import specific_mask

    assert np.array_equal(
        en._specific_counts(freq, cfg), specific_mask(freq, 0.05, 0.01).sum(axis=(0, 2))
    )


def test_one_pass_nulls_equal_the_partial_mantel_of_stats() -> None:
    from babelmoe.analysis.stats.metrics import as_distance, pairwise
    from babelmoe.analysis.stats.permutation import LabelPermutations, mantel, partial_mantel

    langs = _languages()[:7]
    freq = _frequency(langs, "script") + np.random.default_rng(1).uniform(0, 0.02, (7, 4, 32))
    profile = make_profile(langs, frequency=freq, n_units=8)
    stats = StatisticsConfig(n_permutations=99, exact_limit=10_000, n_bootstrap=0)
    cfg = sg.ScriptGenealogyConfig(statistics=stats)
    result = sg.script_genealogy(profile, cfg)
    plan = LabelPermutations(7, 10_000, 99, 0)
    assert plan.exact
    dist = as_distance(
        pairwise(profile.frequency.numpy().reshape(7, -1), "jensen_shannon"), "jensen_shannon"
    )
    s_ref, g_ref = result.references["script"], result.references["genealogy"]
    expected = partial_mantel(plan, dist, s_ref, g_ref)
    got = result.model.partial["script"]
    assert got.statistic == pytest.approx(expected.statistic)
    assert got.p_value == pytest.approx(expected.p_value)
    expected_g = partial_mantel(plan, dist, g_ref, s_ref)
    assert result.model.partial["genealogy"].p_value == pytest.approx(expected_g.p_value)
    assert result.model.mantel["script"].p_value == pytest.approx(mantel(plan, dist, s_ref).p_value)


def test_leave_one_family_out() -> None:
    langs = _languages()
    extra = [
        {"code": c, "name": c, "family": "Sino-Tibetan", "genus": "Sinitic", "script": s,
         "classification": ["Sino-Tibetan", "Sinitic"], "scripts": {s: 1.0}}
        for c, s in (("yue", "Hani"), ("wuu", "Hani"), ("hak", "Latn"))
    ]  # fmt: skip
    langs += extra
    profile = make_profile(langs, frequency=_frequency(langs, "script"), n_units=8)
    result = sg.script_genealogy(profile, sg.ScriptGenealogyConfig(**FAST))
    assert set(result.leave_one_family_out) == {"Indo-European", "Sino-Tibetan"}
    assert all(-1 <= v <= 1 for pair in result.leave_one_family_out.values() for v in pair)
    assert "Leaving out one family" in sg.findings(result, sg.ScriptGenealogyConfig(**FAST))[1]
