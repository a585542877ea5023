"""Numeric answer extraction for generation tasks (MGSM): the last number in the model's output.

Before matching, every decimal digit of any script (``unicodedata.decimal``: full-width ３,
Bengali ৫, Devanagari ५, Arabic-Indic ٥, Thai ๕ ...) becomes its ASCII digit, and the
full-width / Arabic separators and minus signs become ``, . -``. ``unicodedata.decimal`` rather
than ``unicodedata.digit`` so that superscripts and circled numbers (m², ①) are not read as numbers.

A number is then: an optional minus sign that does not follow a letter, digit or another dash
("20-12" is 12, "= -3" is -3, the em dash of "Ответ — 11" is no sign), digits with optional
thousands separators ("1,234", "1 234" with a (narrow) no-break space), and an optional decimal
part ("2.5"; a sentence-final "12." is 12). A comma not followed by exactly three digits is not a
thousands separator, so "3,5" reads as two numbers, 3 and 5 (MGSM answers are integers).
"""

from __future__ import annotations

import math
import re
import unicodedata

_SEPARATORS = {
    "\uff0c": ",",  # full-width comma
    "\u066c": ",",  # Arabic thousands separator
    "\uff0e": ".",  # full-width full stop
    "\u066b": ".",  # Arabic decimal separator
    "\u2212": "-",  # minus sign
    "\uff0d": "-",  # full-width hyphen-minus
}
_NUMBER = re.compile(
    r"(?P<sign>(?<![\w\-])-)?"
    r"(?P<int>[0-9]{1,3}(?:[,\u00a0\u202f][0-9]{3})+(?![0-9])|[0-9]+)"
    r"(?P<frac>\.[0-9]+)?"
)


def normalize_digits(text: str) -> str:
    """``text`` with every Unicode decimal digit as ASCII and separators/minus signs unified."""
    out = []
    for ch in text:
        if ch in _SEPARATORS:
            out.append(_SEPARATORS[ch])
        elif not ch.isascii() and unicodedata.decimal(ch, None) is not None:
            out.append(str(unicodedata.decimal(ch)))
        else:
            out.append(ch)
    return "".join(out)


def find_numbers(text: str) -> list[float]:
    """Every number in ``text``, in order of appearance."""
    numbers = []
    for match in _NUMBER.finditer(normalize_digits(text)):
        digits = re.sub(r"[,\u00a0\u202f]", "", match["int"]) + (match["frac"] or "")
        value = float(digits)
        numbers.append(-value if match["sign"] else value)
    return numbers


def extract_last_number(text: str) -> float | None:
    """The last number in ``text``, or None when it holds none."""
    numbers = find_numbers(text)
    return numbers[-1] if numbers else None


def parse_number(text: str) -> float | None:
    """``text`` read as exactly one number (surrounding spaces allowed), else None."""
    numbers = find_numbers(text)
    stripped = normalize_digits(text).strip()
    if len(numbers) != 1 or not _NUMBER.fullmatch(stripped):
        return None
    return numbers[0]


def numbers_equal(a: float | None, b: float | None) -> bool:
    """Numeric exact match (tolerant only of float representation error)."""
    if a is None or b is None:
        return False
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def as_json_number(value: float | None) -> int | float | None:
    """An integral float as int (``18.0`` -> ``18``) for readable records."""
    if value is not None and float(value).is_integer():
        return int(value)
    return value
