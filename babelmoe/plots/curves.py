"""Per-layer curves: shared / specific expert counts, Mantel r by layer, seeds, model diff."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from babelmoe.plots.base import new_figure


def expert_counts(
    shared: np.ndarray,
    shared_ci: np.ndarray,
    specific: np.ndarray,
    lape: np.ndarray,
    codes: Sequence[str],
    threshold: float,
) -> Figure:
    """Shared count per layer with its bootstrap band; specific counts per language per layer
    by the threshold rule and by LAPE. ``specific`` and ``lape`` are [n, L]."""
    layers = np.arange(shared.shape[0])
    fig = new_figure(11.0, 3.4)
    a, b, c = fig.subplots(1, 3)
    a.plot(layers, shared, marker="o", color="black")
    if np.isfinite(shared_ci).all():
        a.fill_between(
            layers,
            shared_ci[0],
            shared_ci[1],
            alpha=0.25,
            color="grey",
            label="bootstrap percentile interval",
        )
        a.legend(fontsize=7)
    a.set_title(f"shared experts (freq >= {threshold} in all)")
    for ax, values, title in (
        (b, specific, "language-specific (threshold rule)"),
        (c, lape, "language-specific (LAPE)"),
    ):
        for code, row in zip(codes, values, strict=True):
            ax.plot(layers, row, marker=".", label=code)
        ax.set_title(title)
    c.legend(fontsize=7, ncol=2)
    for ax in (a, b, c):
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("experts")
    return fig


def agreement_by_layer(r: dict[str, np.ndarray], p: dict[str, np.ndarray], alpha: float) -> Figure:
    """Mantel r per layer for each reference; filled markers where p < alpha."""
    fig = new_figure(6.0, 3.4)
    ax = fig.subplots()
    for ref, values in r.items():
        layers = np.arange(len(values))
        line = ax.plot(layers, values, label=ref)[0]
        significant = p[ref] < alpha
        ax.scatter(layers[significant], values[significant], color=line.get_color(), zorder=3)
        ax.scatter(
            layers[~significant],
            values[~significant],
            facecolors="none",
            edgecolors=line.get_color(),
            zorder=3,
        )
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("layer")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("Mantel Spearman r")
    ax.set_title(f"agreement with genealogy and script per layer (filled: p < {alpha})")
    ax.legend(fontsize=7)
    return fig


def seed_stability(
    runs: Sequence[str],
    ari: np.ndarray | None,
    pairs: Sequence[tuple[int, int]],
    shared: np.ndarray,
    group: str | None,
    stats: Sequence[float],
    cis: Sequence[Sequence[float]],
) -> Figure:
    """Partition ARI per layer, shared counts per seed, and one group statistic per seed."""
    fig = new_figure(11.0, 3.4)
    a, b, c = fig.subplots(1, 3)
    if ari is not None:
        for (i, j), row in zip(pairs, ari, strict=True):
            a.plot(np.arange(len(row)), row, marker=".", label=f"seed {i} vs {j}")
        a.set_ylim(min(0.0, float(np.min(ari))), 1.05)
        a.legend(fontsize=7)
    a.set_title("partition agreement (ARI)")
    a.set_xlabel("layer")
    a.xaxis.set_major_locator(MaxNLocator(integer=True))
    for s, row in enumerate(shared):
        b.plot(np.arange(len(row)), row, marker=".", label=f"seed {s}")
    b.set_title("shared experts per layer")
    b.set_xlabel("layer")
    b.xaxis.set_major_locator(MaxNLocator(integer=True))
    b.legend(fontsize=7)
    if group is not None:
        x = np.arange(len(stats))
        lo = np.array(
            [s - ci[0] if ci[0] is not None else 0 for s, ci in zip(stats, cis, strict=True)]
        )
        hi = np.array(
            [ci[1] - s if ci[1] is not None else 0 for s, ci in zip(stats, cis, strict=True)]
        )
        c.errorbar(x, stats, yerr=np.nan_to_num(np.stack([lo, hi])), fmt="o", capsize=3)
        c.axhline(0.0, color="grey", lw=0.8)
        c.set_xticks(x, [f"seed {s}" for s in x])
        c.set_title(f"{group}: within - rest distance")
    else:
        c.set_axis_off()
    return fig


def diff_curves(
    mean_abs: np.ndarray,
    noise_floor: np.ndarray,
    corr: np.ndarray,
    corr_ci: np.ndarray,
    labels: Sequence[str],
    shared_a: np.ndarray,
    shared_b: np.ndarray,
    names: tuple[str, str],
) -> Figure:
    """Model-vs-model per layer: mean |delta| (dashed: what sampling noise alone gives) and the
    correlation (band: bootstrap interval), thin lines per language, black for all languages;
    shared experts in each model."""
    layers = np.arange(mean_abs.shape[1])
    fig = new_figure(11.0, 3.4)
    a, b, c = fig.subplots(1, 3)
    for ax, values, title in (
        (a, mean_abs, "mean |delta frequency|"),
        (b, corr, "correlation of frequencies"),
    ):
        for label, row in zip(labels[:-1], values[:-1], strict=True):
            ax.plot(layers, row, lw=0.8, alpha=0.6, label=label)
        ax.plot(layers, values[-1], color="black", lw=2, label="all languages")
        ax.set_title(title)
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if np.isfinite(noise_floor[-1]).all():
        a.plot(layers, noise_floor[-1], color="black", ls="--", lw=1, label="noise floor")
    if np.isfinite(corr_ci[:, -1]).all():
        b.fill_between(layers, corr_ci[0, -1], corr_ci[1, -1], color="grey", alpha=0.3)
    a.legend(fontsize=6, ncol=2)
    c.plot(layers, shared_a, marker=".", label=names[0])
    c.plot(layers, shared_b, marker=".", label=names[1])
    c.set_title("shared experts per layer")
    c.set_xlabel("layer")
    c.xaxis.set_major_locator(MaxNLocator(integer=True))
    c.legend(fontsize=7)
    return fig
