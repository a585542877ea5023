"""The held-out documents of a run: the corpus the profile read, cut by the profile's own split.

``profile.json`` records the corpus source, the languages as requested, ``heldout_frac`` and
``heldout_seed``; reloading that corpus and applying ``Corpus.split_heldout`` with the same
fraction and seed gives exactly the documents profiling never saw (the split is a hash of the
seed and each document's id). Evaluation reads only those.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from babelmoe.corpus import Document
from babelmoe.errors import BabelmoeError, setting
from babelmoe.profile.artifact import ProfileData
from babelmoe.prune.targets import language_names

logger = logging.getLogger(__name__)


def heldout_documents(
    profile: ProfileData, indices: Sequence[int] | None = None, max_documents: int | None = None
) -> dict[str, list[Document]]:
    """``{language name: held-out documents}`` for the profiled languages at ``indices`` (all
    when None), at most ``max_documents`` each (the first ones)."""
    from babelmoe.corpus import load_corpus

    config = profile.meta.get("config", {})
    source, requested = config.get("corpus"), config.get("languages")
    frac, seed = float(config.get("heldout_frac", 0.0)), int(config.get("heldout_seed", 0))
    if not source or not isinstance(requested, list) or len(requested) != len(profile.languages):
        raise BabelmoeError(
            "the profile does not record its corpus and languages",
            "re-run babelmoe profile with this version of babelmoe",
        )
    if frac <= 0.0:
        raise BabelmoeError(
            f"the profile kept no held-out documents ({setting('heldout_frac')} 0)",
            f"re-run babelmoe profile with {setting('heldout_frac')} 0.2",
        )
    corpus = load_corpus(source, requested)
    recorded = profile.meta.get("corpus", {}).get("sha256")
    if recorded and corpus.identity()["sha256"] != recorded:
        logger.warning(
            "the corpus %s changed since profiling; the held-out documents are still the ones "
            "whose ids profiling left out, but their text may differ",
            source,
        )
    _, held = corpus.split_heldout(frac, seed)
    names = language_names(profile)
    chosen = range(len(names)) if indices is None else indices
    out = {}
    for i in chosen:
        entry = held.languages[i]
        if entry.lang.code != profile.codes[i]:
            raise BabelmoeError(
                f"the corpus gives {entry.lang.code} where the profile has {profile.codes[i]}",
                "evaluate with the corpus the profile was made from",
            )
        docs = entry.documents[:max_documents] if max_documents else entry.documents
        out[names[i]] = list(docs)
    logger.info("held-out documents: %s", ", ".join(f"{k} {len(v)}" for k, v in out.items()))
    return out
