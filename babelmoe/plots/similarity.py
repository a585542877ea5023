"""Language x language figures: similarity matrices, dendrograms, distance scatter."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from scipy.cluster.hierarchy import dendrogram

from babelmoe.analysis.stats.metrics import METRICS
from babelmoe.plots.base import grid, new_figure, place_labels


def similarity_matrices(
    matrices: dict[str, np.ndarray], codes: Sequence[str], order: Sequence[int]
) -> Figure:
    """One panel per metric, languages in clustering ``order``; bright = similar in every panel
    (distances use a reversed colour map). Values are printed when there are <= 12 languages."""
    rows, cols = grid(len(matrices))
    n = len(codes)
    side = max(2.6, 0.32 * n + 1.2)
    fig = new_figure(side * cols + 0.6 * cols, side * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    labels = [codes[i] for i in order]
    for ax, (name, matrix) in zip(axes.flat, matrices.items(), strict=False):
        m = matrix[np.ix_(order, order)]
        spec = METRICS[name]
        image = ax.imshow(m, cmap="viridis_r" if spec.is_distance else "viridis")
        ax.set_xticks(range(n), labels, rotation=90)
        ax.set_yticks(range(n), labels)
        ax.set_title(spec.label + (" (row || column)" if not spec.symmetric else ""))
        fig.colorbar(image, ax=ax, shrink=0.8)
        if n <= 12:
            for i in range(n):
                for j in range(n):
                    red, green, blue, _ = image.cmap(image.norm(m[i, j]))
                    light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
                    colour = "black" if light else "white"
                    text = f"{m[i, j]:.2g}"
                    ax.text(j, i, text, ha="center", va="center", fontsize=6, color=colour)
    for ax in list(axes.flat)[len(matrices) :]:
        ax.set_axis_off()
    return fig


def dendrograms(
    activation: np.ndarray, genealogy: np.ndarray, labels: Sequence[str], metric_label: str
) -> Figure:
    """Tanglegram: the activation clustering (left) facing the family tree from the
    classification lineages (right); lines join each language's two leaves."""
    n = len(labels)
    fig = new_figure(9.0, max(2.5, 0.32 * n + 1.2))
    left, middle, right = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.0, 0.45, 1.0]})
    if activation.shape[0] == 0:
        return fig
    tree_a = dendrogram(
        activation,
        ax=left,
        orientation="left",
        no_labels=True,
        color_threshold=0,
        above_threshold_color="tab:blue",
    )
    tree_g = dendrogram(
        genealogy,
        ax=right,
        orientation="right",
        no_labels=True,
        color_threshold=0,
        above_threshold_color="tab:green",
    )
    y_a = {leaf: 5.0 + 10.0 * k for k, leaf in enumerate(tree_a["leaves"])}
    y_g = {leaf: 5.0 + 10.0 * k for k, leaf in enumerate(tree_g["leaves"])}
    for leaf in range(n):
        same = y_a[leaf] == y_g[leaf]
        middle.plot([0.3, 0.7], [y_a[leaf], y_g[leaf]], color="grey" if same else "tab:red", lw=0.8)
        middle.text(0.28, y_a[leaf], labels[leaf], ha="right", va="center")
        middle.text(0.72, y_g[leaf], labels[leaf], ha="left", va="center")
    for ax in (left, middle, right):
        ax.set_ylim(0, 10 * n)
        ax.set_yticks([])
    middle.set_xlim(0, 1)
    middle.set_axis_off()
    left.set_title(f"activation\n({metric_label})")
    left.set_xlabel("distance")
    right.set_title("family tree\n(classification)")
    right.set_xlabel("genealogical distance")
    return fig


def distance_scatter(
    activation: np.ndarray,
    genealogy: np.ndarray,
    script: np.ndarray,
    codes: Sequence[str],
    metric_label: str,
) -> Figure:
    """Each language pair: genealogical distance (x) vs activation distance (y), coloured by
    whether the two share a script."""
    rows, cols = np.triu_indices(len(codes), 1)
    fig = new_figure(5.0, 3.8)
    ax = fig.subplots()
    same = script[rows, cols] == 0
    for mask, colour, label in (
        (same, "tab:orange", "same script"),
        (~same, "tab:blue", "different script"),
    ):
        ax.scatter(
            genealogy[rows, cols][mask], activation[rows, cols][mask], c=colour, label=label, s=22
        )
    ax.set_xlabel("genealogical distance")
    ax.set_ylabel(metric_label)
    ax.legend(loc="best", fontsize=7)
    if len(rows) <= 45:  # labels where they fit without overlapping (the crowded ones left out)
        place_labels(
            ax,
            genealogy[rows, cols],
            activation[rows, cols],
            [f"{codes[i]}-{codes[j]}" for i, j in zip(rows, cols, strict=True)],
        )
    return fig


def paired_distances(
    dist_a: np.ndarray,
    dist_b: np.ndarray,
    codes: Sequence[str],
    metric_label: str,
    names: tuple[str, str],
) -> Figure:
    """Two distance matrices side by side on one colour scale."""
    n = len(codes)
    fig = new_figure(8.0, max(3.0, 0.32 * n + 1.2))
    vmax = float(np.nanmax([np.nanmax(dist_a), np.nanmax(dist_b)])) or 1.0
    for ax, m, title in zip(fig.subplots(1, 2), (dist_a, dist_b), names, strict=True):
        image = ax.imshow(m, cmap="viridis_r", vmin=0.0, vmax=vmax)
        ax.set_xticks(range(n), list(codes), rotation=90)
        ax.set_yticks(range(n), list(codes))
        ax.set_title(f"{title}: {metric_label}")
        fig.colorbar(image, ax=ax, shrink=0.8)
    return fig
