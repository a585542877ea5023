"""Sweep figures (matplotlib, Agg backend; each saved as PNG and SVG)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from babelmoe.plots.base import new_figure, save_figure
from babelmoe.prune.sweep import DENSE, RANDOM, SweepConfig


def _y_axis(ax: Any, values: Sequence[float]) -> None:
    """Log scale when the plotted ``values`` span more than a factor 3 (random pruning can blow
    perplexity up by orders of magnitude), plain numbers on the ticks."""
    from matplotlib.ticker import LogFormatter, NullFormatter, ScalarFormatter

    finite = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    if finite and max(finite) / min(finite) > 3:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
        ax.yaxis.set_minor_formatter(NullFormatter())
        return
    formatter = ScalarFormatter()
    formatter.set_scientific(False)
    formatter.set_useOffset(False)
    ax.yaxis.set_major_formatter(formatter)


def plot_curves(
    points: Sequence[dict[str, Any]], config: SweepConfig, langs: Sequence[str], stem: Path
) -> list[Path]:
    """Perplexity vs ratio, one panel per language: a line per method (pruned for that
    language), random's mean with its min..max band over seeds, the dense model at ratio 0."""
    ncols = min(3, len(langs))
    nrows = math.ceil(len(langs) / ncols)
    fig = new_figure(4.2 * ncols, 3.2 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    index = {(p["eval_lang"], p["method"], p["ratio"]): p for p in points}
    ratios = sorted(config.ratios)
    for ax, lang in zip(axes.flat, langs, strict=False):
        dense = index.get((lang, DENSE, 0.0))
        start = ([0.0], [dense["ppl"]]) if dense else ([], [])
        rand = [index[(lang, RANDOM, r)] for r in ratios if (lang, RANDOM, r) in index]
        if rand:
            xs = start[0] + [p["ratio"] for p in rand]
            ax.fill_between(
                xs,
                start[1] + [p["ppl_min"] for p in rand],
                start[1] + [p["ppl_max"] for p in rand],
                color="grey",
                alpha=0.25,
                label="random (min–max)",
            )
            ax.plot(
                xs,
                start[1] + [p["ppl"] for p in rand],
                color="grey",
                linestyle="--",
                marker=".",
                label="random (mean)",
            )
        for method in config.methods:
            own = [index[(lang, method, r)] for r in ratios if (lang, method, r) in index]
            if own:
                ax.plot(
                    start[0] + [p["ratio"] for p in own],
                    start[1] + [p["ppl"] for p in own],
                    marker="o",
                    label=method,
                )
        if dense:
            ax.axhline(dense["ppl"], color="black", linewidth=0.8, linestyle=":", label="dense")
        ax.set_title(lang)
        _y_axis(ax, [v for line in ax.get_lines() for v in line.get_ydata()])
        ax.set_xlabel("share of experts removed")
        ax.set_ylabel("held-out perplexity")
    for ax in list(axes.flat)[len(langs) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=len(labels))
    return save_figure(fig, stem.parent, stem.name)


def plot_specificity(matrix: dict[str, Any], stem: Path) -> list[Path]:
    """Heatmap of perplexity relative to dense: rows pruned for, columns evaluated on."""
    import numpy as np

    values = np.asarray(matrix["relative_to_dense"], dtype=float)
    logs = np.log2(values)
    n = len(matrix["eval_langs"])
    size = max(4.0, 1.5 + 0.6 * n)
    fig = new_figure(size + 1.0, size)
    ax = fig.subplots()
    image = ax.imshow(logs, cmap="magma_r")
    ax.set_xticks(range(n), matrix["eval_langs"])
    ax.set_yticks(range(n), matrix["targets"])
    ax.set_xlabel("evaluated on")
    ax.set_ylabel("pruned for")
    middle = (logs.min() + logs.max()) / 2
    for i in range(n):
        for j in range(n):
            weight = "bold" if i == j else "normal"
            colour = "white" if logs[i, j] > middle else "black"
            text = f"{values[i, j]:.3f}" if values[i, j] < 10 else f"{values[i, j]:.1f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, weight=weight, color=colour)
    fig.colorbar(image, ax=ax, label="log2(perplexity / dense)")
    ax.set_title(f"perplexity / dense ({matrix['method']}, ratio {matrix['ratio']:g})")
    return save_figure(fig, stem.parent, stem.name)
