"""Tidy tables written twice: ``<name>.csv`` (one row per observation) and ``<name>.json``.

The JSON form is ``{"schema_version", "kind": "table", "name", "description", "columns", "rows"}``
with rows as objects; NaN is written as an empty CSV cell and as JSON ``null``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from babelmoe.artifacts import SCHEMA_VERSION, atomic_write_json, atomic_write_text
from babelmoe.artifacts import finite_json as clean
from babelmoe.errors import BabelmoeError

Row = dict[str, Any]


def write_tables(folder: Path, tables: dict[str, tuple[str, list[Row]]]) -> None:
    """Write ``{name: (description, rows)}`` as tables into ``folder``."""
    for name, (description, rows) in tables.items():
        write_table(folder, name, rows, description)


def write_table(folder: Path, name: str, rows: Sequence[Row], description: str) -> Path:
    """Write ``rows`` (dicts with the same keys) as CSV and JSON; returns the CSV path."""
    rows = [clean(row) for row in rows]
    columns = list(rows[0]) if rows else []
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    csv_path = folder / f"{name}.csv"
    atomic_write_text(csv_path, buffer.getvalue())
    atomic_write_json(
        folder / f"{name}.json",
        {
            "schema_version": SCHEMA_VERSION,
            "kind": "table",
            "name": name,
            "description": description,
            "columns": columns,
            "rows": rows,
        },
    )
    return csv_path


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON file written by this package, checking its schema version."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BabelmoeError(f"missing {path}", "run the stage that writes it first") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BabelmoeError(
            f"{path} is corrupted ({exc.__class__.__name__})",
            "delete it and re-run the stage that wrote it",
        ) from None
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        found = data.get("schema_version") if isinstance(data, dict) else None
        raise BabelmoeError(
            f"{path} has schema version {found}, this babelmoe reads {SCHEMA_VERSION}",
            "re-run the stage that wrote it with this version of babelmoe",
        )
    return data


def read_table(folder: Path, name: str) -> list[Row]:
    """Rows of a table written by ``write_table``."""
    return read_json(Path(folder) / f"{name}.json")["rows"]
