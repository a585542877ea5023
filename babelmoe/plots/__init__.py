"""Figures (matplotlib, no pyplot and no display needed) and the self-contained HTML report.

- ``base``: figure creation and writing PNG + SVG atomically.
- ``heatmaps``: frequency heatmaps (layers x experts) per language, difference heatmaps.
- ``similarity``: similarity matrices in clustering order, dendrograms, agreement scatter.
- ``curves``: per-layer curves (shared / specific counts, Mantel r, seeds, model diff).
- ``figures``: every figure of an analysis or a diff, written into a folder.
- ``report``: the HTML report and its section hook; ``sections``: the analysis and diff sections.
"""
