"""The article alignment of a profile's units, rebuilt for profiles that do not record it.

Profiles written since the profile stage records ``meta["unit_documents"]`` need nothing here.
For an older profile the ids are rebuilt from its corpus: the corpus is loaded again (its
identity must equal the one the profile recorded), held-out documents are split off the same way,
and the language's j-th profiled document is put in unit j % U for every unit that has tokens
(the profile keeps a prefix of the documents within its token budget, so a unit's first document
is always one that was profiled). When the corpus cannot be loaded or differs, the profile is
used without alignment (a logged note): intervals are then resampled independently per language
and the language-label null permutes units without article strata.
"""

from __future__ import annotations

import logging

from babelmoe.errors import BabelmoeError
from babelmoe.profile.artifact import ProfileData

logger = logging.getLogger(__name__)


def rebuild_unit_documents(profile: ProfileData) -> list[list[list[str]]] | None:
    """Per language, per unit, the id of the unit's first document (None when not possible)."""
    from babelmoe.corpus import heldout_split, load_corpus

    config = profile.meta.get("config") or {}
    recorded = profile.meta.get("corpus") or {}
    source, languages = config.get("corpus"), config.get("languages")
    if not source or not languages or not recorded.get("sha256") or source.startswith("hf:"):
        return None  # a streamed dataset is not read a second time for this
    try:
        corpus = load_corpus(source, list(languages), install=False)
    except (BabelmoeError, OSError) as exc:
        logger.info("unit alignment not rebuilt: corpus %s not loadable (%s)", source, exc)
        return None
    if corpus.identity().get("sha256") != recorded.get("sha256"):
        logger.info("unit alignment not rebuilt: corpus %s differs from the profiled one", source)
        return None
    unit_tokens = profile.unit_tokens.numpy()
    n_units = unit_tokens.shape[1]
    frac, seed = config.get("heldout_frac", 0.2), config.get("heldout_seed", 0)
    out = []
    for i, entry in enumerate(corpus.languages):
        docs, _ = heldout_split(entry.documents, frac, seed)
        out.append(
            [
                [docs[u].id] if u < len(docs) and unit_tokens[i, u] > 0 else []
                for u in range(n_units)
            ]
        )
    return out


def ensure_unit_documents(profile: ProfileData) -> ProfileData:
    """``profile`` with ``meta["unit_documents"]`` filled in where it can be (in place)."""
    if profile.meta.get("unit_documents") is None:
        rebuilt = rebuild_unit_documents(profile)
        if rebuilt is not None:
            logger.info("unit alignment rebuilt from the corpus (profile predates its record)")
            profile.meta["unit_documents"] = rebuilt
    return profile
