"""Scatter labels: placed around their points without overlapping, the crowded ones left out."""

from __future__ import annotations

import numpy as np

from babelmoe.plots.base import new_figure, place_labels


def _boxes(ax) -> list:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(ax.figure).get_renderer()
    return [t.get_window_extent(renderer) for t in ax.texts]


def test_labels_do_not_overlap_and_crowded_ones_are_left_out() -> None:
    rng = np.random.default_rng(0)
    xs = np.concatenate([rng.uniform(0, 1, 12), np.full(20, 0.5)])  # 20 points on one spot
    ys = np.concatenate([rng.uniform(0, 1, 12), np.full(20, 0.5)])
    fig = new_figure(5.0, 3.8)
    ax = fig.subplots()
    ax.scatter(xs, ys)
    labels = [f"pair-{k:02d}" for k in range(len(xs))]
    left_out = place_labels(ax, xs, ys, labels)
    fig.draw_without_rendering()
    boxes = _boxes(ax)
    assert len(boxes) + left_out == len(labels) and 0 < left_out < 20
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
            overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
            assert overlap_x <= 1.0 or overlap_y <= 1.0, (a, b)  # a pixel of slack for rounding
