"""Heatmaps of frequencies (layers x experts): one colour scale shared by every panel.

Expert ids are arbitrary k-means labels, so within each layer the experts are sorted by their
mean frequency over the languages (descending, the same order in every panel): the left edge holds
the experts most used by all languages, and panels can be compared column by column.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from babelmoe.plots.base import grid, new_figure


def expert_order(freq: np.ndarray) -> np.ndarray:
    """[n, L, E] -> [L, E] per-layer expert order by mean frequency over languages (descending)."""
    return np.argsort(-freq.mean(axis=0), axis=-1, kind="stable")


def _sorted(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    return np.take_along_axis(values, order, axis=-1)


def _panels(
    values: np.ndarray,
    titles: Sequence[str],
    order: np.ndarray,
    scale: dict,
    label: str,
    extend: str,
) -> Figure:
    """[k, L, E] values, one panel each, experts in ``order`` [L, E], one colour ``scale``."""
    rows, cols = grid(len(titles))
    n_layers = values.shape[1]
    fig = new_figure(3.6 * cols + 0.8, max(1.6, 0.08 * n_layers + 1.2) * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for k, ax in enumerate(axes.flat):
        if k >= len(titles):
            ax.set_axis_off()
            continue
        image = ax.imshow(
            _sorted(values[k], order), aspect="auto", interpolation="nearest", **scale
        )
        ax.set_title(titles[k])
        ax.set_xlabel("experts (by mean frequency)")
        ax.set_ylabel("layer")
    fig.colorbar(image, ax=axes, label=label, extend=extend, shrink=0.8)
    return fig


def frequency_heatmaps(freq: np.ndarray, titles: Sequence[str]) -> Figure:
    """One panel per language; colour = frequency, one scale for all panels."""
    vmax = float(np.quantile(freq, 0.995)) or float(freq.max()) or 1.0
    scale = {"cmap": "magma", "vmin": 0.0, "vmax": vmax}
    return _panels(freq, titles, expert_order(freq), scale, "activation frequency", "max")


def difference_heatmaps(
    delta: np.ndarray, titles: Sequence[str], order: np.ndarray, label: str
) -> Figure:
    """[k, L, E] differences with experts in ``order`` [L, E]; one symmetric diverging scale."""
    bound = float(np.quantile(np.abs(delta), 0.995)) or float(np.abs(delta).max()) or 1.0
    scale = {"cmap": "RdBu_r", "vmin": -bound, "vmax": bound}
    return _panels(delta, titles, order, scale, label, "both")
