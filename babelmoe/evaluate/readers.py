"""Reading task files line by line, with errors that name the file and line and say what to do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from babelmoe.errors import BabelmoeError


def read_text(path: Path, what: str) -> str:
    """The text of an existing, UTF-8, not blank file (a leading BOM is dropped).

    ``what`` names the expected content in error messages (e.g. ``"X-CSQA JSONL"``).
    """
    path = Path(path)
    if not path.is_file():
        raise BabelmoeError(f"no such {what} file: {path}", "pass the path of an existing file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BabelmoeError(
            f"{path} is not UTF-8 text (byte {exc.start})", f"pass a UTF-8 {what} file"
        ) from None
    if not text.strip():
        raise BabelmoeError(f"{path} is empty", f"pass a {what} file with at least one item")
    return text


def read_lines(path: Path, what: str) -> list[tuple[int, str]]:
    """Non-blank lines of a UTF-8 file as (1-based line number, line without newline)."""
    text = read_text(path, what)
    lines = [(n, line.rstrip("\r")) for n, line in enumerate(text.split("\n"), start=1)]
    return [(n, line) for n, line in lines if line.strip()]


def read_jsonl(path: Path, what: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Objects of a JSONL file, each with its location ``"file:line"`` for error messages."""
    for number, line in read_lines(path, what):
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BabelmoeError(
                f"{where}: malformed JSON ({exc.msg} at column {exc.colno})",
                f"fix or delete that line; a {what} file holds one JSON object per line",
            ) from None
        if not isinstance(obj, dict):
            raise BabelmoeError(
                f"{where}: expected a JSON object, found {type(obj).__name__}",
                f"a {what} file holds one JSON object per line",
            )
        yield where, obj


def require_field(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``obj[key]``, checked to exist and be of type ``kind`` (or one of the types)."""
    if key not in obj:
        raise BabelmoeError(f"{where}: missing field {key!r}", "fix the record")
    value = obj[key]
    if not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        expected = " or ".join(k.__name__ for k in kinds)
        raise BabelmoeError(
            f"{where}: field {key!r} should be {expected}, found {type(value).__name__}",
            "fix the record",
        )
    return value
