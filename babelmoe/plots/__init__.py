"""Figures (matplotlib, no pyplot and no display needed) and the HTML of the report.

- ``base``: figure creation and writing PNG + SVG atomically (the one figure saver);
- ``heatmaps``: frequency heatmaps (layers x experts) per language, difference heatmaps;
- ``similarity``: similarity matrices in clustering order, dendrograms, agreement scatter;
- ``curves``: per-layer curves (shared / specific counts, Mantel r, seeds, model diff);
- ``figures``: every figure of an analysis or a diff, written into a folder;
- ``sweep``: the pruning sweep's figures; ``sweep_sections``: its report section;
- ``html``: the page's building blocks (a leaf module); ``sections``: the analysis and diff
  sections. The report itself is written by ``babelmoe.stages.report``.
"""
