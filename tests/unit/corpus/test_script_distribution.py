"""Script as a distribution over Unicode scripts, and the UDHR default-version rule."""

from __future__ import annotations

import logging

import pytest

from babelmoe.corpus import udhr
from babelmoe.corpus.languages import (
    LanguageInfo,
    language_info,
    script_distribution,
    script_overlap_distance,
    script_shares,
)
from babelmoe.corpus.udhr import UdhrVersion, orthography_year, resolve_udhr

JAPANESE = "すべての人間は、生まれながらにして自由であり、かつ、尊厳と権利とについて平等である。"


def test_shares_of_a_mixed_text_sum_to_one_and_keep_the_majority() -> None:
    shares = script_shares(JAPANESE)
    assert set(shares) == {"Hani", "Hira"}
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    assert list(shares) == sorted(shares, key=lambda k: -shares[k])  # largest first
    info = language_info("ja", text=JAPANESE)
    assert info.scripts == shares and info.script_code == next(iter(shares))
    assert script_shares("1948 — 12!") == {}


def test_overlap_distance() -> None:
    ja = {"Hani": 0.47, "Hira": 0.43, "Kana": 0.10}
    assert script_overlap_distance(ja, {"Hani": 1.0}) == pytest.approx(0.53)
    assert script_overlap_distance({"Latn": 1.0}, {"Latn": 1.0}) == 0.0
    assert script_overlap_distance({"Latn": 1.0}, {"Cyrl": 1.0}) == 1.0
    assert script_overlap_distance(ja, ja) == pytest.approx(0.0)
    assert script_overlap_distance({}, {}) == 1.0  # unknown is never "the same script"
    a, b = {"Latn": 0.7, "Cyrl": 0.3}, {"Latn": 0.2, "Cyrl": 0.8}
    assert script_overlap_distance(a, b) == pytest.approx(script_overlap_distance(b, a))


def test_distribution_falls_back_to_the_majority_label() -> None:
    assert script_distribution({"code": "x", "script_code": "Arab"}) == {"Arab": 1.0}
    assert script_distribution({"code": "x", "scripts": {"Latn": 2, "Cyrl": 2}}) == {
        "Latn": 0.5,
        "Cyrl": 0.5,
    }
    assert script_distribution({"code": "x"}) == {}
    info = language_info("zh-Hant")  # no text: the subtag
    assert info.scripts == {"Hant": 1.0}
    assert LanguageInfo.from_dict(info.to_dict()) == info


def _v(code: str, iso: str = "deu", stage: int = 4) -> UdhrVersion:
    return UdhrVersion(code, iso, iso[:2], code, "ltr", stage)


def test_newest_orthography_is_the_default(caplog: pytest.LogCaptureFixture) -> None:
    versions = [_v("deu_1901"), _v("deu_1996"), _v("ron_1953", "ron"), _v("ron_2006", "ron")]
    udhr._TOLD.clear()  # the rule is logged once per process: not already by an earlier test
    with caplog.at_level(logging.INFO, logger="babelmoe.corpus.udhr"):
        assert resolve_udhr("deu", versions).code == "deu_1996"
    assert "deu_1996" in caplog.text and "newest orthography" in caplog.text
    assert "deu_1901" in caplog.text  # what else was available
    assert resolve_udhr("ron", versions).code == "ron_2006"
    assert resolve_udhr("deu_1901", versions).code == "deu_1901"  # an exact code wins
    # the unmarked version and a higher stage still come first
    assert resolve_udhr("deu", [_v("deu_1996"), _v("deu")]).code == "deu"
    assert resolve_udhr("deu", [_v("deu_1901", stage=5), _v("deu_1996")]).code == "deu_1901"


def test_orthography_year() -> None:
    assert orthography_year("deu_1996") == 1996
    assert orthography_year("ron_1953") == 1953
    assert orthography_year("007") is None and orthography_year("urd_2") is None
    assert orthography_year("cmn_hans") is None
