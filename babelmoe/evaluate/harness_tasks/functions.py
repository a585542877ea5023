"""Python referenced by the shipped task YAMLs (``!function babelmoe.evaluate.harness_tasks...``).

Kept free of lm-eval imports so a task YAML can load it in any process where babelmoe is
installed, the harness's own CLI included.
"""

from __future__ import annotations

from collections.abc import Sequence

from babelmoe.evaluate.answers import as_json_number, extract_last_number

NO_NUMBER = "[no number]"
"""The filtered answer of an output holding no number (never equal to a gold answer)."""


def answer_text(value: float | None) -> str:
    """A number as MGSM targets are written (``18.0`` -> ``"18"``), or ``NO_NUMBER``."""
    return NO_NUMBER if value is None else str(as_json_number(value))


def last_number(resps: Sequence[Sequence[str]], docs: Sequence[dict]) -> list[list[str]]:
    """lm-eval filter: each generation -> its last number (babelmoe's MGSM answer extraction)."""
    return [[answer_text(extract_last_number(text)) for text in outputs] for outputs in resps]
