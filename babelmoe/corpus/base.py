"""The common model of every corpus source: documents per language, and the held-out split.

A :class:`Corpus` is an ordered list of :class:`LanguageCorpus` (the order is the order of the
language axis in every artifact). Its :meth:`Corpus.identity` (source, languages, document counts,
a sha256 over the texts, and the split it was cut by) goes into artifacts so that a later stage can
check it reads counts made from the same text.

Held-out split: :func:`heldout_split` sends whole documents to evaluation, so profiling and
evaluation never see the same text. Which documents go is decided by a hash of the seed and the
document id, not by position: it is deterministic, independent of the order documents come in,
and for parallel corpora whose documents share ids across languages (UDHR's ``article-N``) the
same articles are held out in every language.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from babelmoe.corpus.languages import LanguageInfo
from babelmoe.errors import BabelmoeError, setting

logger = logging.getLogger(__name__)

DEFAULT_HELDOUT_FRAC = 0.2


@dataclass
class Document:
    """One unit of text, never split between profiling and evaluation.

    Attributes:
        id: identifier, unique within its language (``article-3``, ``en.txt:12``, a JSONL ``id``).
        text: the text, non-empty; lines are separated by ``\\n``.
    """

    id: str
    text: str


@dataclass
class LanguageCorpus:
    """The documents of one language from one source.

    Attributes:
        lang: the language's metadata.
        documents: the documents, in the source's order.
        source: where they come from: ``udhr``, a folder path, or ``hf:<dataset>[:<config>]``.
        variant: the source's own name for this language version when it has one (the UDHR code
            ``cmn_hant``, a file name, a dataset config); tells two versions of a language apart.
    """

    lang: LanguageInfo
    documents: list[Document]
    source: str
    variant: str | None = None

    @property
    def n_chars(self) -> int:
        """Total characters of the documents' texts."""
        return sum(len(d.text) for d in self.documents)


def _check_frac(heldout_frac: float) -> None:
    if not 0.0 <= heldout_frac < 1.0:
        raise BabelmoeError(
            f"heldout_frac must be in [0, 1), got {heldout_frac}",
            "use e.g. 0.2 to keep a fifth of the documents for evaluation, 0 for none",
        )


def _split_key(seed: int, doc_id: str) -> bytes:
    return hashlib.sha256(f"{seed}\0{doc_id}".encode()).digest()


def heldout_split(
    documents: Sequence[Document],
    heldout_frac: float = DEFAULT_HELDOUT_FRAC,
    seed: int = 0,
    what: str = "this language",
) -> tuple[list[Document], list[Document]]:
    """Split documents into (profile, eval) by whole documents, deterministically.

    ``round(heldout_frac * n)`` documents are held out, at least one and at most ``n - 1`` when
    ``heldout_frac > 0``; both parts keep the input order. ``heldout_frac == 0`` holds out nothing.

    Args:
        documents: the documents of one language (ids must be unique).
        heldout_frac: share of documents for evaluation, in [0, 1).
        seed: changes which documents are held out.
        what: the name used in error messages (a language label).

    Raises:
        BabelmoeError: for a fraction out of range, duplicate ids, or fewer than 2 documents when
            something must be held out.
    """
    _check_frac(heldout_frac)
    n = len(documents)
    if heldout_frac == 0.0:
        return list(documents), []
    if n < 2:
        raise BabelmoeError(
            f"{what} has {n} document(s): a held-out split needs at least 2",
            "add documents (separate them by a blank line in .txt files) or pass "
            f"{setting('heldout_frac')} 0",
        )
    ids = [d.id for d in documents]
    if len(set(ids)) != n:
        dup = next(i for i in ids if ids.count(i) > 1)
        raise BabelmoeError(
            f"{what} has two documents with id {dup!r}", "give documents unique ids"
        )
    n_eval = min(max(round(heldout_frac * n), 1), n - 1)
    order = sorted(range(n), key=lambda i: _split_key(seed, ids[i]))
    held = set(order[:n_eval])
    profile = [d for i, d in enumerate(documents) if i not in held]
    evaluation = [d for i, d in enumerate(documents) if i in held]
    return profile, evaluation


@dataclass
class Corpus:
    """An ordered list of languages' documents, as the profile and evaluate stages take it.

    Attributes:
        languages: one entry per language, in the order of the artifacts' language axis.
        source: the source string it was loaded from (``udhr``, a folder, ``hf:...``).
        split: ``None`` for the full corpus, else ``{"part": "profile"|"eval", "heldout_frac",
            "seed"}`` for one side of :meth:`split`.
    """

    languages: list[LanguageCorpus]
    source: str
    split: dict[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        labels = self.labels
        if len(set(labels)) != len(labels):
            dup = sorted({x for x in labels if labels.count(x) > 1})
            raise BabelmoeError(
                f"the corpus has language(s) {', '.join(dup)} twice", "ask for each language once"
            )

    def __len__(self) -> int:
        return len(self.languages)

    def __iter__(self) -> Iterator[LanguageCorpus]:
        return iter(self.languages)

    def __getitem__(self, index: int) -> LanguageCorpus:
        return self.languages[index]

    @property
    def labels(self) -> list[str]:
        """One unique name per language, in order: the ISO 639-3 code, or the source's variant
        name (``cmn_hant``) for the languages whose ISO code appears more than once."""
        codes = [lc.lang.code for lc in self.languages]
        return [
            (lc.variant or lc.lang.code) if codes.count(lc.lang.code) > 1 else lc.lang.code
            for lc in self.languages
        ]

    @property
    def infos(self) -> list[LanguageInfo]:
        """The languages' metadata, in order."""
        return [lc.lang for lc in self.languages]

    def identity(self) -> dict[str, Any]:
        """What identifies this text for artifact validation (JSON-ready).

        Keys: ``source``, ``labels``, ``codes`` (ISO 639-3), ``variants``, ``n_documents``,
        ``sha256`` (over labels, document ids and texts, in order) and ``split``.
        """
        digest = hashlib.sha256()
        for label, lc in zip(self.labels, self.languages, strict=True):
            digest.update(f"L\0{label}\0{len(lc.documents)}\0".encode())
            for doc in lc.documents:
                digest.update(f"D\0{doc.id}\0{len(doc.text)}\0".encode())
                digest.update(doc.text.encode("utf-8"))
        return {
            "source": self.source,
            "labels": self.labels,
            "codes": [lc.lang.code for lc in self.languages],
            "variants": [lc.variant for lc in self.languages],
            "n_documents": [len(lc.documents) for lc in self.languages],
            "sha256": digest.hexdigest(),
            "split": dict(self.split) if self.split is not None else None,
        }

    def split_heldout(
        self, heldout_frac: float = DEFAULT_HELDOUT_FRAC, seed: int = 0
    ) -> tuple[Corpus, Corpus]:
        """(profile corpus, eval corpus): :func:`heldout_split` applied to every language."""
        _check_frac(heldout_frac)
        if self.split is not None:
            raise BabelmoeError(
                "this corpus is already one side of a held-out split", "split the full corpus"
            )
        prof, ev = [], []
        for label, lc in zip(self.labels, self.languages, strict=True):
            p_docs, e_docs = heldout_split(
                lc.documents, heldout_frac, seed, what=f"language {label}"
            )
            prof.append(replace(lc, documents=p_docs))
            ev.append(replace(lc, documents=e_docs))
        meta = {"heldout_frac": heldout_frac, "seed": seed}
        return (
            Corpus(prof, self.source, {"part": "profile", **meta}),
            Corpus(ev, self.source, {"part": "eval", **meta}),
        )
