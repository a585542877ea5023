"""Interventions on a language's experts: which experts are a language's (``selection``), what
switching them off does to every language's perplexity (``silence``), and whether amplifying
them steers generation into that language (``steering``, ``langid``); the steering's statistics
in ``stats``, the silencing matrix's tests over languages in ``babelmoe.analysis.stats.dominance``.
The masks themselves are ``babelmoe.experts.masks.scaled_experts``; the command is
``babelmoe steer`` (``babelmoe.stages.steer.run_steer`` from Python)."""
