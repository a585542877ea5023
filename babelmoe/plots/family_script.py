"""Figures of the family-against-script analysis and of the shared-expert null model."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from babelmoe.plots.base import new_figure

SCRIPT_COLOUR = "#1b6ca8"
GENEALOGY_COLOUR = "#c0392b"


def _p_text(p: float | None) -> str:
    if p is None or not np.isfinite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def family_vs_script(block: dict[str, Any]) -> Figure:
    """Left: whole-model partial Mantel r of activation distance on script distance (genealogy
    held fixed) and on genealogical distance (script held fixed), with bootstrap intervals and
    permutation p-values. Right: the same per layer, with interval bands; filled markers where
    the layer's partial r is significant after Holm adjustment.

    ``block`` is the ``family_vs_script`` block of ``summary.json``.
    """
    fig = new_figure(10.5, 3.9)
    left, right = fig.subplots(1, 2, width_ratios=[1, 2.6])
    refs = (
        ("script", "script\n(genealogy held fixed)", SCRIPT_COLOUR),
        ("genealogy", "genealogy\n(script held fixed)", GENEALOGY_COLOUR),
    )
    model = block["model"]["partial"]
    for k, (ref, _, colour) in enumerate(refs):
        r = model[ref]["r"]
        lo, hi = model[ref]["ci"]
        err = None
        if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi):
            err = [[max(r - lo, 0.0)], [max(hi - r, 0.0)]]
        left.bar(k, r, color=colour, alpha=0.85, yerr=err, capsize=5, width=0.6)
        top = max(r, hi if hi is not None and np.isfinite(hi) else r)
        left.annotate(
            _p_text(model[ref]["p_value"]),
            (k, max(top, 0.0)),
            xytext=(0, 4),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    left.set_xticks([0, 1], [label for _, label, _ in refs], fontsize=8)
    left.axhline(0.0, color="black", linewidth=0.8)
    left.set_ylabel("partial Mantel r of activation distance")
    left.set_title(f"whole model, {block['n_languages']} languages", fontsize=9)

    layers = block["layers"]
    x = np.array([row["layer"] for row in layers])
    alpha = block["alpha"]
    for ref, label, colour in refs:
        r = np.array([row["partial"][ref]["r"] for row in layers], dtype=float)
        ci = np.array([row["partial"][ref]["ci"] for row in layers], dtype=float)
        p = np.array([row["partial"][ref].get("p_holm") or np.nan for row in layers], dtype=float)
        right.plot(x, r, color=colour, linewidth=1.6, label=label.replace("\n", " "))
        if np.isfinite(ci).all():
            right.fill_between(x, ci[:, 0], ci[:, 1], color=colour, alpha=0.18, linewidth=0)
        significant = p < alpha
        right.scatter(x[significant], r[significant], color=colour, s=22, zorder=3)
        right.scatter(
            x[~significant], r[~significant], facecolor="white", edgecolor=colour, s=22, zorder=3
        )
    right.axhline(0.0, color="black", linewidth=0.8)
    right.set_xlabel("layer")
    right.set_xticks(x)
    right.tick_params(axis="x", labelsize=7)
    right.set_title(
        f"per layer (band: {block['ci_level']:.0%} bootstrap interval; filled: Holm p < {alpha})",
        fontsize=9,
    )
    right.legend(fontsize=8, loc="best")
    lo = min(left.get_ylim()[0], right.get_ylim()[0])
    hi = max(left.get_ylim()[1], right.get_ylim()[1]) + 0.05
    left.set_ylim(lo, hi)
    right.set_ylim(lo, hi)
    diff = block["model"]["difference_ci"]
    significant = {
        ref: (model[ref]["p_value"] is not None and model[ref]["p_value"] < alpha)
        for ref in ("script", "genealogy")
    }
    finite = diff[0] is not None and diff[1] is not None and np.isfinite(diff).all()
    if finite and diff[0] > 0 and significant["script"]:
        headline = "Activation distance follows script more than genealogy"
    elif finite and diff[1] < 0 and significant["genealogy"]:
        headline = "Activation distance follows genealogy more than script"
    else:
        headline = "Script against genealogy: no clear winner"
    fig.suptitle(f"{headline} (whole model; higher = follows it more)", fontsize=10)
    return fig


def expert_null_counts(block: dict[str, Any]) -> Figure:
    """Per layer, shared and specific experts observed (bars) against the count expected when
    experts are matched across languages at random within each layer (line); stars mark layers
    above the null (p < 0.05). ``block`` is the ``expert_null`` block of ``summary.json``."""
    fig = new_figure(10.5, 3.2)
    axes = fig.subplots(1, 2)
    kinds = (("shared", "shared"), ("specific", "language-specific"))
    for ax, (kind, title) in zip(axes, kinds, strict=True):
        data = block[kind]
        observed = np.array(data["observed"], dtype=float)
        expected = np.array(data["expected"], dtype=float)
        p = np.array(data["p_value"], dtype=float)
        x = np.arange(observed.size)
        ax.bar(x, observed, color="#7f8c8d", label="observed")
        ax.plot(
            x,
            expected,
            color="black",
            marker="o",
            markersize=3,
            linewidth=1.2,
            label="expected if experts were matched at random",
        )
        top = max(float(observed.max(initial=0)), float(expected.max(initial=0)), 1.0)
        for layer in np.flatnonzero((p < 0.05) & (observed > expected)):
            ax.text(layer, observed[layer] + 0.02 * top, "*", ha="center", fontsize=10)
        ax.set_xticks(x)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel("layer")
        ax.set_ylabel("experts")
        ax.set_title(f"{title} experts per layer", fontsize=9)
        ax.legend(fontsize=7)
        if top <= 1.0:
            ax.set_ylim(0, 1.0)
    fig.suptitle(
        "Experts per layer against a null model that keeps each layer's rates "
        "(*: above it, p < 0.05)",
        fontsize=10,
    )
    return fig


def mrm_coefficients(block: dict[str, Any], rows: list[dict[str, Any]]) -> Figure:
    """Left: the whole-model MRM coefficients with their language-bootstrap intervals (filled:
    the claim holds after the headline's Holm adjustment). Right: each predictor's coefficient
    per layer (filled: Holm over layers p < alpha and interval above 0).

    ``block`` is the ``mrm`` block of the family-vs-script summary, ``rows`` the table ``mrm``.
    """
    fig = new_figure(10.5, 3.6)
    left, right = fig.subplots(1, 2, width_ratios=[1, 2.2])
    alpha = block["alpha"]
    names = block["predictors"]
    colours = [f"C{k}" for k in range(len(names))]

    def num(x: Any) -> float:
        return float("nan") if x is None else float(x)

    model = {r["predictor"]: r for r in rows if r["scope"] == "model"}
    for k, name in enumerate(names):
        r = model[name]
        beta, lo, hi = num(r["beta"]), num(r["ci_low"]), num(r["ci_high"])
        holds = num(r["p_holm"]) < alpha and lo > 0
        y = len(names) - 1 - k
        if np.isfinite(lo) and np.isfinite(hi):
            left.plot([lo, hi], [y, y], color=colours[k], linewidth=2)
        left.scatter(
            [beta],
            [y],
            color=colours[k] if holds else "white",
            edgecolor=colours[k],
            s=40,
            zorder=3,
        )
    left.axvline(0.0, color="black", linewidth=0.8)
    left.set_yticks(range(len(names)), list(reversed(names)), fontsize=8)
    left.set_xlabel("standardised coefficient")
    left.set_title(
        f"whole model, {block['n_languages']} languages\n"
        f"({block['ci_level']:.0%} language bootstrap; filled: holds)",
        fontsize=9,
    )
    layer_rows = [r for r in rows if r["scope"] != "model"]
    for k, name in enumerate(names):
        mine = sorted((r for r in layer_rows if r["predictor"] == name), key=lambda r: r["scope"])
        if not mine:
            continue
        x = np.array([int(r["scope"]) for r in mine])
        beta = np.array([num(r["beta"]) for r in mine])
        follows = np.array(
            [num(r["p_holm"]) < alpha and num(r["ci_low"]) > 0 for r in mine], dtype=bool
        )
        right.plot(x, beta, color=colours[k], linewidth=1.5, label=name)
        right.scatter(x[follows], beta[follows], color=colours[k], s=18, zorder=3)
        right.scatter(
            x[~follows], beta[~follows], facecolor="white", edgecolor=colours[k], s=18, zorder=3
        )
    right.axhline(0.0, color="black", linewidth=0.8)
    right.set_xlabel("layer")
    right.set_xticks(sorted({int(r["scope"]) for r in layer_rows}))
    right.tick_params(axis="x", labelsize=7)
    right.set_title(
        f"per layer (filled: Holm over layers p < {alpha}, interval above 0)", fontsize=9
    )
    right.legend(fontsize=7, frameon=False, ncol=2)
    return fig
