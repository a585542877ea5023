"""Stage 3: what the activation patterns say about languages, with intervals and tests.

Pure computation (arrays in, arrays out, no I/O):
- ``metrics``: language x language similarity (Euclidean, KL, Jensen-Shannon, Pearson,
  Spearman, cosine) on frequency vectors, whole model and per layer.
- ``genealogy``: genealogical / family / genus / script distances from language metadata, groups.
- ``permutation``: Mantel and partial Mantel tests, the group test, Holm adjustment.
- ``bootstrap``: resampling of document units and percentile intervals.
- ``experts``: shared experts, language- and group-specific experts (threshold rule, LAPE).
- ``clustering``: hierarchical clustering of languages.
- ``stability``: adjusted Rand index between partitions, spread over seeds.
- ``compare``: ``analyse_profile`` runs all of the above on one profile.
- ``seeds``: several seeds' analyses side by side; ``diff``: two profiles of one architecture.
- ``records`` / ``summary`` / ``diff_summary``: tidy tables and the headline summary.
- ``synthetic``: profiles with a known structure, for tests and demos.

I/O: ``tables`` (CSV + JSON tables) and ``runner`` (``run_analysis``, ``run_diff``).
"""
