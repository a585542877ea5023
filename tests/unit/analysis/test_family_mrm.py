"""The MRM family-against-script analysis: claims, restricted tests, leave-one-family-out,
the moderator, the covariates contract and the stage's outputs."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from babelmoe import testing
from babelmoe.analysis import family_mrm as fm
from babelmoe.analysis.config import StatisticsConfig
from babelmoe.analysis.expert_null import ExpertNullConfig
from babelmoe.analysis.script_genealogy import ScriptGenealogyConfig
from babelmoe.analysis.stats import mrm
from babelmoe.profile.artifact import save_profile
from babelmoe.stages.family_script import FOLDER, run_family_script

try:  # the contract sci-cov implements; until it lands, the same fields here
    from babelmoe.analysis.covariates import Covariates
except ImportError:

    @dataclass
    class Covariates:  # type: ignore[no-redef]
        languages: list[str]
        features: dict[str, np.ndarray] = field(default_factory=dict)
        distances: dict[str, np.ndarray] = field(default_factory=dict)
        sources: dict[str, str] = field(default_factory=dict)


FAST = {
    "statistics": StatisticsConfig(n_permutations=299),
    "n_restricted_permutations": 299,
    "n_language_bootstrap": 200,
    "n_moderator_permutations": 199,
}
LIMITED = StatisticsConfig(n_permutations=299, exact_limit=10)


def _world(n: int = 36, seed: int = 0) -> tuple[list[dict], dict[str, np.ndarray]]:
    """n languages in 6 families crossed with 4 scripts; graded-free 0/1 references."""
    rng = np.random.default_rng(seed)
    family = np.arange(n) % 6
    script = rng.integers(0, 4, n)
    langs = [
        {"code": f"l{i:02d}", "family": f"F{family[i]}", "script": f"S{script[i]}"}
        for i in range(n)
    ]
    gen = (family[:, None] != family[None]).astype(float)
    scr = (script[:, None] != script[None]).astype(float)
    geo = np.abs(rng.normal(size=n)[:, None] - rng.normal(size=n)[None])
    geo = (geo + geo.T) / 2
    np.fill_diagonal(geo, 0)
    return langs, {"script": scr, "genealogy": gen, "geography": geo}


def _noise(n: int, rng: np.random.Generator) -> np.ndarray:
    points = rng.normal(size=(n, 3))
    return np.linalg.norm(points[:, None] - points[None], axis=-1)


def _run(response: np.ndarray, langs, preds, features=None, **overrides) -> fm.MRMResult:
    cfg = fm.MRMConfig(**{**FAST, **overrides})
    labels = [x["code"] for x in langs]
    return fm.family_mrm(response, preds, langs, labels, cfg, features)


def test_planted_genealogy_effect_is_claimed_and_script_is_not() -> None:
    langs, preds = _world()
    rng = np.random.default_rng(1)
    n = len(langs)
    resp = np.stack([preds["genealogy"] + 0.8 * _noise(n, rng) for _ in range(3)])
    result = _run(resp, langs, preds)
    block = fm.claims(result, fm.MRMConfig(**FAST))
    by_id = {c["id"]: c for c in block["claims"]}
    assert by_id["mrm.model.genealogy"]["holds"]
    assert not by_id["mrm.model.script"]["holds"]
    assert not by_id["mrm.model.geography"]["holds"]
    assert by_id["restricted.genealogy.within_script"]["holds"]
    assert result.beta.shape == (3, 3) and np.all(result.p_layers_holm[1:, 1] < 0.05)


def test_null_response_claims_nothing() -> None:
    langs, preds = _world(seed=2)
    rng = np.random.default_rng(3)
    resp = _noise(len(langs), rng)[None]
    block = fm.claims(_run(resp, langs, preds), fm.MRMConfig(**FAST))
    assert not any(c["holds"] for c in block["claims"])
    assert block["correction"].startswith(f"Holm over {len(block['claims'])} tests: ")


def test_leave_one_family_out_equals_the_fit_without_the_family() -> None:
    langs, preds = _world(n=24)
    rng = np.random.default_rng(4)
    resp = (preds["genealogy"] + _noise(24, rng))[None]
    result = _run(resp, langs, preds, n_language_bootstrap=0)
    assert result.lofo_families == [f"F{i}" for i in range(6)] and result.lofo_sizes == [4] * 6
    keep = np.array([x["family"] != "F2" for x in langs])
    sub = np.ix_(keep, keep)
    y = mrm.standardise(mrm.upper(resp[0][sub]))
    x = mrm.standardise(np.stack([mrm.upper(preds[k][sub]) for k in result.predictors])).T
    np.testing.assert_allclose(result.lofo_beta[2], mrm.fit(y, x).beta, atol=1e-10)
    assert np.isnan(result.ci).all()  # no bootstrap asked for


def test_restricted_test_with_too_few_relabelings_is_flagged_not_run() -> None:
    langs, preds = _world(n=12)
    for i, lang in enumerate(langs):  # families of one language but two
        lang["family"] = "pair" if i < 2 else f"solo{i}"
    rng = np.random.default_rng(5)
    result = _run(_noise(12, rng)[None], langs, preds)
    test = next(t for t in result.restricted if t.predictor == "script")
    assert not test.feasible and test.n_relabelings == 2 and np.isnan(test.p)
    assert "not tested" in test.note
    block = fm.claims(result, fm.MRMConfig(**FAST))
    assert "restricted.script.within_family" not in {c["id"] for c in block["claims"]}
    assert "not testable: script within family" in block["correction"]


def test_moderator_finds_a_genealogy_effect_only_among_well_known_languages() -> None:
    langs, preds = _world(n=40, seed=6)
    rng = np.random.default_rng(7)
    n = len(langs)
    bpb = rng.uniform(0.5, 3.0, n)
    known = bpb <= np.median(bpb)
    both = known[:, None] & known[None]
    resp = (np.where(both, 2.0 * preds["genealogy"], 0.0) + 0.6 * _noise(n, rng))[None]
    features = {"bits_per_byte": bpb, "tokens_per_byte": np.full(n, np.nan)}
    result = _run(resp, langs, preds, features)
    m = next(x for x in result.moderators if x.predictor == "genealogy")
    assert sorted(m.better) == sorted(x["code"] for x, k in zip(langs, known, strict=True) if k)
    assert m.beta_better > 0.3 > abs(m.beta_less) and m.ci[0] > 0 and m.p < 0.01
    notes = " ".join(result.notes)
    assert "tokens_per_byte: measured for 0 languages" in notes


def test_predictor_selection_names_what_was_left_out() -> None:
    _, preds = _world(n=10)
    extra = dict(preds)
    extra["fertility"] = np.zeros((10, 10))
    extra["familiarity"] = np.full((10, 10), np.nan)
    extra["token_overlap"] = preds["script"] * 2.0
    used, notes = fm.select_predictors(extra, fm.DEFAULT_PREDICTORS)
    assert used == ["script", "genealogy", "geography"]
    text = " ".join(notes)
    assert "fertility: the same for every pair" in text
    assert "familiarity: not measured" in text
    assert "token_overlap: orders the pairs like script" in text


def _profile(tmp_path: Path) -> list[dict]:
    langs = [dict(x) for x in testing.PAPER_LANGUAGE_INFO]
    save_profile(tmp_path, testing.make_profile(langs, n_layers=3, n_experts=16))
    return langs


SG_FAST = ScriptGenealogyConfig(
    statistics=StatisticsConfig(n_permutations=99, exact_limit=10, n_bootstrap=10)
)


def test_stage_writes_the_mrm_tables_and_claims_that_round_trip(tmp_path: Path) -> None:
    _profile(tmp_path)
    cfg = fm.MRMConfig(**{**FAST, "statistics": LIMITED})
    blocks = run_family_script(
        SG_FAST, tmp_path, null_cfg=ExpertNullConfig(n_draws=20), mrm_cfg=cfg
    )
    out = tmp_path / FOLDER
    for name in ("mrm", "mrm_restricted", "mrm_lofo", "mrm_moderator"):
        assert (out / f"{name}.csv").is_file() and (out / f"{name}.json").is_file()
    text = (out / "claims.json").read_text()
    claims = json.loads(text)
    assert json.loads(json.dumps(claims)) == claims
    assert set(claims) == {"schema_version", "n_languages", "correction", "claims"}
    assert claims["schema_version"] == 1 and claims["n_languages"] == 9
    keys = {"id", "statement", "estimate", "ci_low", "ci_high", "interval", "p", "p_adjusted"}
    for c in claims["claims"]:
        assert set(c) == keys | {"holds"} and isinstance(c["holds"], bool)
        assert c["interval"] == "language bootstrap 95%"
    ids = [c["id"] for c in claims["claims"]]
    assert ids[:3] == ["mrm.model.script", "mrm.model.genealogy", "mrm.model.r2"]
    assert claims["correction"].startswith(f"Holm over {len(ids)} tests")
    rows = json.loads((out / "mrm.json").read_text())["rows"]
    assert len(rows) == (1 + 3) * 2 and rows[0]["scope"] == "model"
    block = blocks["family_vs_script"]
    assert block["findings"][0].startswith("MRM, whole model, 9 languages")
    assert block["findings"][1].startswith("Caveat: 9 languages")
    assert "no covariates" in " ".join(blocks["notes"])
    section = json.loads((out / "report_section.json").read_text())
    assert "<details>" in section["html"] and "language" in section["html"]


def test_stage_uses_the_covariates_when_they_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    langs = _profile(tmp_path)
    n = len(langs)
    rng = np.random.default_rng(8)
    labels = [x["code"] for x in langs]
    order = rng.permutation(n)  # the covariates list the languages in another order
    geo = _noise(n, rng)
    bpb = rng.uniform(1, 3, n)
    family = [x["family"] for x in langs]
    gen = np.array([[0.0 if a == b else 1.0 for b in family] for a in family])
    cov = Covariates(
        languages=[labels[i] for i in order],
        features={"bits_per_byte": bpb[order]},
        distances={
            "script": _script_matrix(langs)[np.ix_(order, order)],
            "genealogy": gen[np.ix_(order, order)],
            "geography": geo[np.ix_(order, order)],
        },
        sources={"geography": "test"},
    )
    module = types.ModuleType("babelmoe.analysis.covariates")
    module.Covariates = Covariates  # type: ignore[attr-defined]
    module.load_covariates = lambda run_dir: cov  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "babelmoe.analysis.covariates", module)
    cfg = fm.MRMConfig(**{**FAST, "statistics": LIMITED}, min_group=3)
    blocks = run_family_script(
        SG_FAST, tmp_path, null_cfg=ExpertNullConfig(n_draws=20), figures=False, mrm_cfg=cfg
    )
    block = blocks["family_vs_script"]["mrm"]
    assert block["predictors"] == ["script", "genealogy", "geography"]
    assert block["sources"]["geography"] == "test"
    assert [m["feature"] for m in block["moderators"]] == ["bits_per_byte"] * 2
    # the covariates were put back into the profile's order
    better = block["moderators"][0]["better"].split()
    assert better == [labels[i] for i in np.argsort(bpb)[:5]]
    corr = np.array(block["predictor_correlation"])
    direct = mrm.standardise(np.stack([mrm.upper(m) for m in (_script_matrix(langs), gen, geo)]))
    np.testing.assert_allclose(corr, direct @ direct.T / direct.shape[1], atol=1e-12)


def _script_matrix(langs: list[dict]) -> np.ndarray:
    s = [x["script"] for x in langs]
    return np.array([[0.0 if a == b else 1.0 for b in s] for a in s])
