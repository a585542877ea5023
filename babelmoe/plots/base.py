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


# Offsets (points) tried in turn for a point's label: right-above, right-below, left-above,
# left-below, then further out; "left" offsets are shifted by the label's width.
_LABEL_OFFSETS = ((3, 2), (3, -8), (-3, 2), (-3, -8), (3, 9), (3, -15), (-3, 9), (-3, -15))


def place_labels(ax, xs, ys, labels, fontsize: float = 6) -> int:
    """Label the points (xs, ys) without overlaps where it can: each label takes the first of a
    few positions around its point that overlaps no label placed before (greedy, points in
    order of y); a label that fits nowhere is left out. Returns how many were left out."""
    fig = ax.figure
    fig.draw_without_rendering()  # the layout, so that data -> display is final
    scale = fig.dpi / 72.0  # points -> pixels
    height = fontsize * 1.2 * scale
    placed: list[tuple[float, float, float, float]] = []
    left_out = 0
    order = sorted(range(len(labels)), key=lambda k: (ys[k], xs[k]))
    for k in order:
        px, py = ax.transData.transform((xs[k], ys[k]))
        width = len(labels[k]) * fontsize * 0.62 * scale
        for dx, dy in _LABEL_OFFSETS:
            x0 = px + dx * scale - (width if dx < 0 else 0.0)
            y0 = py + dy * scale
            box = (x0, y0, x0 + width, y0 + height)
            clear = all(
                box[2] <= b[0] or box[0] >= b[2] or box[3] <= b[1] or box[1] >= b[3] for b in placed
            )
            if clear:
                placed.append(box)
                ax.annotate(
                    labels[k],
                    (xs[k], ys[k]),
                    xytext=(dx, dy),
                    textcoords="offset points",
                    ha="right" if dx < 0 else "left",
                    va="bottom",
                    fontsize=fontsize,
                )
                break
        else:
            left_out += 1
    return left_out
