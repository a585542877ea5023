"""The report's plain-language sentences."""

from __future__ import annotations

from babelmoe.plots.sections import SMALL_SAMPLE, _plain


def _summary(n_languages: int) -> dict:
    return {
        "languages": [{"code": f"l{i}"} for i in range(n_languages)],
        "agreement": {
            "script": {"statistic": 0.54, "p_value": 0.0019},
            "genealogy": {"statistic": 0.12, "p_value": 0.15},
        },
    }


def test_a_small_sample_headline_says_its_references_are_confounded() -> None:
    small = _plain(_summary(9), {}, None)["agreement"]
    assert small.startswith("Activation distance follows script (Mantel r = 0.54")
    assert "With 9 languages" in small and "a hypothesis, not a finding" in small
    large = _plain(_summary(SMALL_SAMPLE), {}, None)["agreement"]
    assert "hypothesis" not in large
