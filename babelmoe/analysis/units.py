"""Which article each bootstrap unit holds: the alignment that pairs units across languages.

A profile splits each language's counts into units of whole documents (``unit_counts``
[n, U, L, E]; the language's j-th profiled document goes to unit j % U). For a parallel corpus
whose documents share ids across languages (UDHR: ``preamble``, ``article-1`` ...) the unit's
*article* is the id of its first document. Position alone does not align units: a version
without a preamble starts at ``article-1``, and a language whose token budget runs out early
profiles fewer articles than another.

The profile stage records the document ids of every unit (``meta["unit_documents"]``: per
language, per unit, the ids); for profiles written before it did, ``stages.units`` rebuilds them
from the corpus.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

PARALLEL_SHARE = 0.5
"""A profile counts as parallel when at least this share of its non-empty units hold an article
that some other language's unit holds too."""


@dataclass
class UnitArticles:
    """The article of every (language, unit).

    Attributes:
        index: [n, U] int64, the article's position in ``names`` (-1: empty unit, or unknown).
        names: the distinct articles (document ids), in order of first appearance.
    """

    index: np.ndarray
    names: list[str]

    @property
    def n_articles(self) -> int:
        return len(self.names)

    @property
    def shared_share(self) -> float:
        """Share of non-empty units whose article appears in at least two languages."""
        cells = self.index[self.index >= 0]
        if cells.size == 0:
            return 0.0
        langs_per_article = np.zeros(len(self.names), dtype=np.int64)
        for row in self.index:
            langs_per_article[np.unique(row[row >= 0])] += 1
        return float((langs_per_article[cells] >= 2).mean())

    @property
    def parallel(self) -> bool:
        """Whether the units align across languages (see :data:`PARALLEL_SHARE`)."""
        return self.index.shape[0] >= 2 and self.shared_share >= PARALLEL_SHARE


def unit_articles(
    unit_documents: list[list[list[str]]] | None, unit_tokens: np.ndarray
) -> UnitArticles | None:
    """[n][U] lists of document ids (``meta["unit_documents"]``) -> :class:`UnitArticles`.

    A unit's article is its first document's id; an empty unit (no tokens) has none. Returns
    None without ids, or when their shape does not match ``unit_tokens`` [n, U].
    """
    if unit_documents is None:
        return None
    unit_tokens = np.asarray(unit_tokens)
    n, n_units = unit_tokens.shape
    if len(unit_documents) != n or any(len(row) != n_units for row in unit_documents):
        return None
    names: dict[str, int] = {}
    index = np.full((n, n_units), -1, dtype=np.int64)
    for i, row in enumerate(unit_documents):
        for u, ids in enumerate(row):
            if ids and unit_tokens[i, u] > 0:
                index[i, u] = names.setdefault(str(ids[0]), len(names))
    return UnitArticles(index=index, names=list(names))


def profile_articles(profile: Any) -> UnitArticles | None:
    """The :class:`UnitArticles` of a ``ProfileData`` (None when it records no document ids)."""
    return unit_articles(profile.meta.get("unit_documents"), profile.unit_tokens.numpy())


def resolve_paired(paired: bool | None, articles: UnitArticles | None) -> bool:
    """``bootstrap_paired`` after its default: None -> paired exactly when the units align."""
    if paired is None:
        return articles is not None and articles.parallel
    return bool(paired)


def describe_resampling(paired: bool, articles: UnitArticles | None) -> str:
    """One sentence for the outputs: how the document bootstrap resampled."""
    if paired and articles is not None and articles.parallel:
        return (
            f"Bootstrap intervals resample articles, paired across languages: one draw of "
            f"weights over the {articles.n_articles} articles (Bayesian bootstrap, Dirichlet(1)) "
            f"is applied to every language's units holding them, as the corpus is parallel "
            f"({articles.shared_share:.0%} of the profiled units hold an article that other "
            f"languages hold too)."
        )
    if paired:
        return (
            "Bootstrap intervals resample units paired by position (the same unit indices in "
            "every language): the profile records no article alignment."
        )
    return "Bootstrap intervals resample each language's documents independently."
