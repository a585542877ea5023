"""Figures of ``babelmoe steer``: the silencing matrix and steering success against fluency."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from babelmoe.plots.base import new_figure

SIDE_BY_SIDE_UP_TO = 20  # languages; more: the panels are stacked and the labels small


def _family_order(block: dict[str, Any]) -> tuple[list[int], list[int]]:
    """The languages' order in the heatmaps (families together, largest first, then genus;
    profile order within) and the positions where a new family starts."""
    n = len(block["languages"])
    families = (block.get("language_blocks") or {}).get("family")
    if not families:
        return list(range(n)), []
    genera = block["language_blocks"].get("genus") or [None] * n
    fam = [f or f"~{i}" for i, f in enumerate(families)]
    size = {f: fam.count(f) for f in fam}
    first = {f: fam.index(f) for f in fam}
    order = sorted(range(n), key=lambda i: (-size[fam[i]], first[fam[i]], str(genera[i] or ""), i))
    starts = [k for k in range(1, n) if fam[order[k]] != fam[order[k - 1]]]
    return order, starts


def silencing_figure(block: dict[str, Any]) -> Figure:
    """Heatmaps of log2(ppl / dense ppl): rows silenced, columns evaluated; own experts and the
    mean over random sets of the same size. Languages of a family sit together (lines between
    families) when the block knows them; more than ``SIDE_BY_SIDE_UP_TO`` languages stack the
    panels and shrink the labels so that every language keeps its label."""
    order, starts = _family_order(block)
    names = [block["languages"][i] for i in order]
    n = len(names)
    own = np.log2(np.array(block["own_ratio"]))[np.ix_(order, order)]
    panels = [("own experts", own)]
    if block.get("random_ratio"):
        random = np.log2(np.array(block["random_ratio"])).mean(0)[np.ix_(order, order)]
        panels.append(("random experts (mean)", random))
    vmax = max(float(np.abs(m).max()) for _, m in panels) or 1.0
    stacked = n > SIDE_BY_SIDE_UP_TO
    side = 4.2 if not stacked else min(10.0, 2.0 + 0.11 * n)  # inches per panel
    fontsize = 8 if not stacked else max(4.0, min(7.0, 500 / n / 1.4))
    if stacked:
        fig = new_figure(side + 1.2, side * len(panels) + 0.4)
        axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    else:
        fig = new_figure(side * len(panels) + 0.8, side)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
    image = None
    for ax, (title, m) in zip(axes, panels, strict=True):
        image = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_xticks(range(n), names, rotation=90, fontsize=fontsize)
        ax.set_yticks(range(n), names, fontsize=fontsize)
        ax.set_xlabel("evaluated language")
        ax.set_ylabel("experts silenced for")
        ax.set_title(title)
        for k in starts:
            ax.axhline(k - 0.5, color="0.35", lw=0.5)
            ax.axvline(k - 0.5, color="0.35", lw=0.5)
        for i in range(n):
            ax.add_patch(
                Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, lw=1.2 if n <= 30 else 0.6, ec="k")
            )
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
