"""Figure creation and atomic PNG + SVG output, without pyplot (no backend or display needed)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from babelmoe.artifacts import atomic_write_bytes

# Reproducible SVG ids and no timestamps, so re-running gives identical files.
_RC = {"svg.hashsalt": "babelmoe", "svg.fonttype": "none"}
PNG_DPI = 110


def new_figure(width: float, height: float) -> Figure:
    """A figure of the given size in inches, drawn with the Agg renderer on save."""
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig: Figure, folder: Path, name: str) -> list[Path]:
    """Write ``<folder>/<name>.png`` and ``.svg``; returns both paths."""
    paths = []
    with matplotlib.rc_context(_RC):
        for fmt, kwargs in (("png", {"dpi": PNG_DPI}), ("svg", {"metadata": {"Date": None}})):
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, **kwargs)
            fig.set_layout_engine("none")  # keep the layout computed for the first format
            path = Path(folder) / f"{name}.{fmt}"
            atomic_write_bytes(path, buffer.getvalue())
            paths.append(path)
    return paths


def grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    """Rows and columns of a panel grid for ``n`` panels."""
    cols = min(n, max_cols)
    return (n + cols - 1) // cols, cols
