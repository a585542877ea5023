"""Language metadata: codes, Glottolog family/genus/lineage from URIEL+, script detection."""

from __future__ import annotations

import pytest

from babelmoe.corpus import (
    LanguageInfo,
    detect_script,
    genealogical_similarity,
    genealogy,
    language_info,
    shared_lineage,
)
from babelmoe.corpus.languages import resolve_code, script_counts, script_direction, split_bcp47
from babelmoe.errors import BabelmoeError

NINE = ("en", "fr", "es", "pt", "zh", "ar", "hi", "bn", "ur")


@pytest.fixture(scope="module")
def nine() -> dict[str, LanguageInfo]:
    return {code: language_info(code) for code in NINE}


def test_codes_resolve_to_iso_639_3(nine: dict[str, LanguageInfo]) -> None:
    assert [nine[c].code for c in NINE] == [
        "eng",
        "fra",
        "spa",
        "por",
        "zho",
        "ara",
        "hin",
        "ben",
        "urd",
    ]
    assert [nine[c].bcp47 for c in NINE] == list(NINE)
    assert resolve_code("eng") == ("eng", "English")
    assert resolve_code("zh-Hant")[0] == "zho"
    assert resolve_code("pt_BR")[0] == "por"
    assert split_bcp47("zh-hant-TW") == ("zh", "Hant")


def test_unknown_code_suggests_near_matches() -> None:
    with pytest.raises(BabelmoeError, match=r"unknown language code 'englsh'.*eng \(English\)"):
        language_info("englsh")
    with pytest.raises(BabelmoeError, match="unknown language code"):
        language_info("")


def test_families_and_genera_of_the_paper_languages(nine: dict[str, LanguageInfo]) -> None:
    fam = {c: nine[c].family for c in NINE}
    gen = {c: nine[c].genus for c in NINE}
    assert {fam[c] for c in ("en", "fr", "es", "pt", "hi", "bn", "ur")} == {"Indo-European"}
    assert fam["zh"] == "Sino-Tibetan" and fam["ar"] == "Afro-Asiatic"
    assert gen["fr"] == gen["es"] == gen["pt"]
    assert gen["hi"] == gen["bn"] == gen["ur"]
    assert gen["en"] != gen["fr"] and fam["en"] == fam["fr"]
    assert gen["en"] == "Germanic" and gen["ar"] == "Semitic" and gen["zh"] == "Sinitic"
    assert len({gen["en"], gen["fr"], gen["hi"], gen["zh"], gen["ar"]}) == 5


def test_classification_is_the_glottolog_lineage(nine: dict[str, LanguageInfo]) -> None:
    assert "Romance" in nine["fr"].classification and "Romance" in nine["pt"].classification
    assert "Indo-Aryan" in nine["bn"].classification
    assert "Germanic" in nine["en"].classification and "Romance" not in nine["en"].classification
    assert nine["en"].classification[0] == "Indo-European"
    assert nine["en"].glottocode == "stan1293"
    # Urdu and Hindi are one Hindustani lineage; Bengali branches off earlier.
    assert nine["hi"].classification == nine["ur"].classification
    assert len(shared_lineage(nine["hi"], nine["bn"])) < len(nine["hi"].classification)
    assert genealogical_similarity(nine["hi"], nine["ur"]) == 1.0
    assert genealogical_similarity(nine["zh"], nine["ar"]) == 0.0
    assert (
        genealogical_similarity(nine["fr"], nine["es"])
        > genealogical_similarity(nine["fr"], nine["en"])
        > genealogical_similarity(nine["fr"], nine["zh"])
    )


def test_macrolanguage_and_individual_agree() -> None:
    assert genealogy("cmn").family == genealogy("zho").family == "Sino-Tibetan"
    assert genealogy("zho").classification == ("Sino-Tibetan", "Sinitic")
    assert genealogy("arb").genus == genealogy("ara").genus == "Semitic"


def test_unknown_and_special_cases() -> None:
    und = genealogy("und")
    assert und.family is None and und.genus is None and und.classification == ()
    basque = genealogy("eus")  # an isolate is its own family
    assert basque.family == "Basque" and basque.classification == ()
    esperanto = genealogy("epo")  # a Glottolog pseudo-family is no family
    assert esperanto.family is None and esperanto.classification[0] == "Artificial Language"


def test_round_trip_dict(nine: dict[str, LanguageInfo]) -> None:
    data = nine["ur"].to_dict()
    assert data["code"] == "urd" and isinstance(data["classification"], list)
    assert LanguageInfo.from_dict({**data, "extra": 1}) == nine["ur"]


@pytest.mark.parametrize(
    ("text", "code", "name"),
    [
        ("All human beings are born free", "Latn", "Latin"),
        ("人人生而自由，在尊严和权利上一律平等。", "Hani", "Han"),
        ("يولد جميع الناس أحراراً متساوين في الكرامة والحقوق", "Arab", "Arabic"),
        ("तमाम इंसान आज़ाद और बराबर पैदा हुए हैं", "Deva", "Devanagari"),
        ("সমস্ত মানুষ স্বাধীনভাবে সমান মর্যাদা", "Beng", "Bengali"),
        ("Все люди рождаются свободными", "Cyrl", "Cyrillic"),
    ],
)
def test_detect_script(text: str, code: str, name: str) -> None:
    assert detect_script(text) == code
    info = language_info("en", text=text)
    assert (info.script_code, info.script) == (code, name)


def test_script_majority_ignores_digits_and_punctuation() -> None:
    assert detect_script("Article 1: 人人生而自由，在尊严和权利上一律平等 (1948)") == "Hani"
    assert detect_script("1948 — 12, 13!") is None
    assert script_counts("ab1 中")["Latn"] == 2


def test_script_and_direction_without_text() -> None:
    assert language_info("zh-Hant").script_code == "Hant"
    assert language_info("en").script is None
    assert script_direction("Arab") == "rtl" and script_direction("Hebr") == "rtl"
    assert script_direction("Latn") == "ltr" and script_direction(None) == "ltr"
    assert language_info("ur", text="اردو").direction == "rtl"


def test_lenient_unknown_code_keeps_it_without_genealogy() -> None:
    info = language_info("xyzzy", name="Mystery", strict=False, text="abc")
    assert (info.code, info.name, info.family, info.classification) == (
        "xyzzy",
        "Mystery",
        None,
        [],
    )
    assert info.script == "Latin"
