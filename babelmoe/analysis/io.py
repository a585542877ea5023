"""Tidy tables written twice: ``<name>.csv`` (one row per observation) and ``<name>.json``.

The JSON form is ``{"schema_version", "kind": "table", "name", "description", "columns", "rows"}``
with rows as objects; NaN is written as an empty CSV cell and as JSON ``null``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from babelmoe.artifacts import SCHEMA_VERSION, atomic_write_json, atomic_write_text, read_json
from babelmoe.artifacts import finite_json as clean

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


def read_table(folder: Path, name: str) -> list[Row]:
    """Rows of a table written by ``write_table``."""
    return read_json(Path(folder) / f"{name}.json")["rows"]
