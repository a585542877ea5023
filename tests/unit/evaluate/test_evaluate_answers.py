"""Numeric answer extraction for MGSM-style generation."""

from __future__ import annotations

import pytest

from babelmoe.evaluate.answers import (
    as_json_number,
    extract_last_number,
    find_numbers,
    numbers_equal,
    parse_number,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,234", 1234),
        ("-3", -3),
        ("３", 3),  # full-width
        ("৫", 5),  # Bengali
        ("१२", 12),  # Devanagari
        ("٤٢", 42),  # Arabic-Indic
        ("The answer is 12.", 12),
        ("It costs $2.50 each.", 2.5),
        ("12,345,678.9 in total", 12345678.9),
        ("Il reste 1\u202f234 €.", 1234),  # narrow no-break space as thousands separator
        ("Step-by-Step Answer: 5 + 6 = 11. 11 * 2 = 22. The answer is 22.", 22),
        ("20-12 = 8 lollipops.", 8),
        ("So 35 - 2 = 33 balls. Ответ — 33.", 33),  # em dash is no minus sign
        ("x = -7", -7),
        ("－５", -5),  # full-width minus and digit
        ("答案是 ３。", 3),
        ("উত্তর হল ১১।", 11),
        ("area 4 m²", 4),  # superscript two is not a digit of a number
    ],
)
def test_last_number(text, expected):
    assert extract_last_number(text) == pytest.approx(expected)


def test_no_number_and_several_numbers():
    assert extract_last_number("I do not know.") is None
    assert find_numbers("20-12 = 8") == [20, 12, 8]
    assert find_numbers("3,5") == [3, 5]  # not a thousands group


def test_parse_number_is_strict():
    assert parse_number(" 42 ") == 42
    assert parse_number("1,234") == 1234
    assert parse_number("-7") == -7
    assert parse_number("42 apples") is None
    assert parse_number("n/a") is None


def test_numeric_exact_match():
    assert numbers_equal(18.0, 18)
    assert numbers_equal(0.1 + 0.2, 0.3)
    assert not numbers_equal(18, 19)
    assert not numbers_equal(None, 3)
    assert as_json_number(18.0) == 18 and isinstance(as_json_number(18.0), int)
    assert as_json_number(2.5) == 2.5 and as_json_number(None) is None
