"""Stage 3: what the activation patterns say about languages, with intervals and tests.

Generic statistics (arrays in, arrays out, no I/O) in ``stats/``:
- ``metrics``: language x language similarity (Euclidean, KL, Jensen-Shannon, Pearson,
  Spearman, cosine) on frequency vectors, whole model and per layer (the ``METRICS`` table);
- ``permutation``: Mantel and partial Mantel tests, the group test, Holm adjustment;
- ``bootstrap``: resampling of document units and percentile intervals;
- ``clustering``: hierarchical clustering of languages;
- ``stability``: adjusted Rand index between partitions, spread over seeds.

The analyses (pure):
- ``genealogy``: genealogical / family / genus / script distances from language metadata, groups;
- ``experts``: shared experts, language- and group-specific experts (threshold rule, LAPE);
- ``expert_null``: shared / specific counts against a within-layer permutation null;
- ``script_genealogy``: activation distance on script vs genealogical distance, per layer;
- ``profile_analysis``: ``analyse_profile`` runs the language comparison on one profile;
- ``seeds``: several seeds' analyses side by side; ``diff``: two profiles of one architecture;
- ``sweep``: pruning-sweep rows -> curves, verdicts against random, the specificity matrix;
- ``tables`` / ``summary`` / ``diff_summary``: tidy tables and the headline summary.

I/O: ``io`` (CSV + JSON tables). The runners are ``babelmoe.stages.analyse`` and ``.diff``;
synthetic profiles for tests are in ``babelmoe.testing``.
"""
