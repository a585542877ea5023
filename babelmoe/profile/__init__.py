"""Stage 2's computation, with no run folder: hooks, expert scores, selection, accumulation.

- ``batches``: token sequences -> batches (BOS first, padding never counted);
- ``hooks``: forward pre-hooks on every FFN output projection (context manager, removed on exit);
- ``scoring`` / ``fused``: expert scores, z-scores, the top-fraction selection (compiled on CUDA);
- ``accumulate``: counts, token counts and score sums per language, kept on the device;
- ``core``: ``profile_batches``, the loop over batches; ``artifact``: the profile artifact.

The runner of ``babelmoe profile`` is ``babelmoe.stages.profile``.
"""
