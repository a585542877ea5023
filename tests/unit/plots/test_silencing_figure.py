"""The silencing heatmaps stay readable for many languages: families grouped, panels stacked,
every language labeled, the PNG no wider than the report's page."""

from __future__ import annotations

import numpy as np
from PIL import Image

from babelmoe.plots.base import save_figure
from babelmoe.plots.interventions import _family_order, silencing_figure


def _block(n: int) -> dict:
    rng = np.random.default_rng(0)
    families = [["X", "Y", "Z", None][i % 4] for i in range(n)]
    return {
        "languages": [f"l{i}" for i in range(n)],
        "own_ratio": np.exp(rng.normal(size=(n, n)) + 3 * np.eye(n)).tolist(),
        "random_ratio": [np.exp(rng.normal(size=(n, n))).tolist()],
        "language_blocks": {"family": families, "genus": families},
    }


def test_family_order_groups_families_largest_first():
    block = _block(10)  # X: 0, 4, 8; Y: 1, 5, 9; Z: 2, 6; isolates 3, 7
    order, starts = _family_order(block)
    assert order == [0, 4, 8, 1, 5, 9, 2, 6, 3, 7] and starts == [3, 6, 8, 9]
    assert _family_order({"languages": ["a", "b"]}) == ([0, 1], [])


def test_many_languages_stack_the_panels_and_fit_the_page(tmp_path):
    for n, stacked in ((9, False), (69, True)):
        fig = silencing_figure(_block(n))
        heatmaps = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"][:2]
        assert all(len(ax.get_xticklabels()) == n for ax in heatmaps)
        first, second = (ax.get_position() for ax in heatmaps)
        assert (first.y0 > second.y0 + 0.1) == stacked
        png = save_figure(fig, tmp_path, f"s{n}")[0]
        assert Image.open(png).width <= 1280
