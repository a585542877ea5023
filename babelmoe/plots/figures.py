"""Every figure of an analysis or of a model diff, written as PNG + SVG into one folder.

Each function returns ``[{"name", "caption", "png", "svg"}]`` (paths relative to ``folder``'s
parent, i.e. the run folder), which the runners store so the report can caption the figures.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from babelmoe.analysis.diff import DiffResult
from babelmoe.analysis.profile_analysis import AnalysisResult
from babelmoe.analysis.seeds import SeedStudy
from babelmoe.analysis.stats.metrics import METRICS
from babelmoe.plots import curves, heatmaps, similarity
from babelmoe.plots.base import save_figure

logger = logging.getLogger(__name__)


class _Writer:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.entries: list[dict[str, Any]] = []

    def add(self, name: str, fig: Figure, caption: str) -> None:
        png, svg = save_figure(fig, self.folder, name)
        base = self.folder.parent
        self.entries.append(
            {
                "name": name,
                "caption": caption,
                "png": str(png.relative_to(base)),
                "svg": str(svg.relative_to(base)),
            }
        )
        logger.debug("wrote %s (.png, .svg)", self.folder / name)


def analysis_figures(
    result: AnalysisResult, study: SeedStudy | None, folder: Path, threshold: float, alpha: float
) -> list[dict[str, Any]]:
    """The figures of one analysis (and of its seed study, when given)."""
    out = _Writer(folder)
    codes, freq = result.codes, result.frequency
    label = METRICS[result.primary].label
    out.add(
        "frequency_heatmaps",
        heatmaps.frequency_heatmaps(freq, codes),
        "Activation frequency per language (rows: layers; columns: experts sorted within "
        "each layer by their mean frequency over languages). One colour scale for all.",
    )
    mean = freq.mean(axis=0, keepdims=True)
    out.add(
        "difference_from_mean",
        heatmaps.difference_heatmaps(
            freq - mean,
            [f"{c} - mean" for c in codes],
            heatmaps.expert_order(freq),
            "frequency difference",
        ),
        "Each language's frequency minus the mean over languages (same expert order, one "
        "symmetric scale): red = used more than average, blue = less.",
    )
    d = result.distance.copy()
    np.fill_diagonal(d, np.nan)
    close = np.unravel_index(np.nanargmin(d), d.shape)
    far = np.unravel_index(np.nanargmax(d), d.shape)
    pairs = [close, far] if close != far else [close]
    out.add(
        "difference_pairs",
        heatmaps.difference_heatmaps(
            np.stack([freq[i] - freq[j] for i, j in pairs]),
            [f"{codes[i]} - {codes[j]}" for i, j in pairs],
            heatmaps.expert_order(freq),
            "frequency difference",
        ),
        f"Frequency differences of the closest pair ({codes[close[0]]}, {codes[close[1]]}) "
        f"and the farthest pair ({codes[far[0]]}, {codes[far[1]]}) by {label}.",
    )
    out.add(
        "similarity_matrices",
        similarity.similarity_matrices(
            {k: m.model for k, m in result.metrics.items()}, codes, result.order
        ),
        "Whole-model language x language comparison for every metric, in the clustering "
        "order of the primary metric. Bright = similar in every panel.",
    )
    out.add(
        "dendrograms",
        similarity.dendrograms(result.linkage, result.genealogy_linkage, codes, label),
        "Left: hierarchical clustering of the activation patterns. Right: the family tree "
        "from the languages' classification (genealogical distance, see analysis docs).",
    )
    out.add(
        "distance_scatter",
        similarity.distance_scatter(
            result.distance,
            result.references["genealogy"],
            result.references["script"],
            codes,
            label,
        ),
        "Every language pair: genealogical distance against activation distance.",
    )
    ex = result.experts
    out.add(
        "expert_counts",
        curves.expert_counts(
            ex.shared_counts, ex.shared_ci, ex.specific.sum(-1), ex.lape.sum(-1), codes, threshold
        ),
        "Per layer: shared experts (with bootstrap interval), language-specific experts by "
        "the threshold rule and by LAPE.",
    )
    by_layer = [a for a in result.agreement if a.layer is not None]
    if by_layer:
        r = {
            ref: np.array([a.test.statistic for a in by_layer if a.reference == ref])
            for ref in ("genealogy", "script")
        }
        p = {
            ref: np.array([a.test.p_value for a in by_layer if a.reference == ref])
            for ref in ("genealogy", "script")
        }
        out.add(
            "agreement_by_layer",
            curves.agreement_by_layer(r, p, alpha),
            "Mantel correlation per layer between activation distance and genealogical / "
            "script distance.",
        )
    if study is not None:
        group = next(iter(study.groups), None)
        found = study.groups.get(group, []) if group else []
        out.add(
            "seed_stability",
            curves.seed_stability(
                study.runs,
                study.ari,
                study.ari_pairs,
                study.shared_counts,
                group,
                [g.test.statistic for g in found],
                [list(g.ci) for g in found],
            ),
            "Stability over k-means seeds: partition agreement per layer, shared experts "
            "per layer, and the group statistic with its bootstrap interval in each seed.",
        )
    return out.entries


def diff_figures(
    result: DiffResult, folder: Path, names: tuple[str, str], metric: str
) -> list[dict[str, Any]]:
    """The figures of a model diff (B - A)."""
    out = _Writer(folder)
    order = heatmaps.expert_order(result.freq_a)
    out.add(
        "diff_heatmaps",
        heatmaps.difference_heatmaps(
            result.delta, [f"{c}: B - A" for c in result.codes], order, "frequency change (B - A)"
        ),
        f"Frequency change from A ({names[0]}) to B ({names[1]}) per language; experts "
        "sorted by A's mean frequency; one symmetric scale.",
    )
    out.add(
        "diff_curves",
        curves.diff_curves(
            result.mean_abs,
            result.noise_floor,
            result.correlation,
            result.correlation_ci,
            [*result.codes, "all"],
            result.shared_a.sum(-1),
            result.shared_b.sum(-1),
            names,
        ),
        "Per layer: mean absolute frequency change (dashed: the level sampling noise alone "
        "gives) and the correlation of A's and B's frequencies (black: all languages, band: "
        "bootstrap interval); shared experts in A and B.",
    )
    out.add(
        "diff_similarity",
        similarity.paired_distances(
            result.distance_a, result.distance_b, result.codes, METRICS[metric].label, names
        ),
        "Language distances in A and in B (same language order, one colour scale).",
    )
    return out.entries
