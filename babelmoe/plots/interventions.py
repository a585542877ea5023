"""Figures of ``babelmoe steer``: the silencing matrix and steering success against fluency."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from babelmoe.plots.base import new_figure


def silencing_figure(block: dict[str, Any]) -> Figure:
    """Two heatmaps of log2(ppl / dense ppl): rows silenced, columns evaluated; own experts
    (left) and the mean over random sets of the same size (right)."""
    names = block["languages"]
    own = np.log2(np.array(block["own_ratio"]))
    panels = [("own experts", own)]
    if block.get("random_ratio"):
        panels.append(("random experts (mean)", np.log2(np.array(block["random_ratio"])).mean(0)))
    vmax = max(float(np.abs(m).max()) for _, m in panels) or 1.0
    fig = new_figure(4.2 * len(panels) + 0.8, 4.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    image = None
    for ax, (title, m) in zip(axes, panels, strict=True):
        image = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_xticks(range(len(names)), names, rotation=90)
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("evaluated language")
        ax.set_ylabel("experts silenced for")
        ax.set_title(title)
        for i in range(len(names)):
            ax.add_patch(Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, lw=1.2, ec="black"))
    fig.colorbar(image, ax=list(axes), label="log2(perplexity / dense)", shrink=0.8)
    return fig


def steering_figure(block: dict[str, Any]) -> Figure:
    """Steering success (share identified as the target) against fluency, one point per factor,
    for target experts and random experts of the same size; the unmodified model as a star."""
    fig = new_figure(5.6, 4.2)
    ax = fig.subplots()
    for flag, style in ((False, "-"), (True, ":")):
        points = [p for p in block["by_factor"] if bool(p.get("silence_source")) == flag]
        if not points:
            continue
        suffix = " + prompt language silenced" if flag else ""
        x = [p["loglik"] for p in points]
        y = [p["share_own"] for p in points]
        err = [
            [p["share_own"] - p["share_own_lo"] for p in points],
            [p["share_own_hi"] - p["share_own"] for p in points],
        ]
        ax.errorbar(x, y, yerr=err, fmt="o" + style, color="C0", label="target experts" + suffix)
        for p in points:
            ax.annotate(
                f"x{p['factor']:g}",
                (p["loglik"], p["share_own"]),
                fontsize=8,
                xytext=(4, 4),
                textcoords="offset points",
            )
        if all("share_random" in p for p in points):
            ax.plot(
                [p.get("random_loglik", np.nan) for p in points],
                [p["share_random"] for p in points],
                "s" + style,
                color="C1",
                label="random experts" + suffix,
            )
    ax.plot(
        [block["dense_loglik"]],
        [float(np.mean([p["share_dense"] for p in block["by_factor"]]))],
        "*",
        color="black",
        markersize=12,
        label="unmodified",
    )
    ax.set_xlabel("fluency: unmodified model's log-likelihood per token")
    ax.set_ylabel("share identified as the target language")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    return fig
