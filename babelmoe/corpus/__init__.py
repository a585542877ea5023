"""Multilingual corpora (UDHR, text/JSONL folders, Hugging Face datasets) and language metadata.

The stages call :func:`load_corpus` and get a :class:`Corpus`: an ordered list of
:class:`LanguageCorpus` (a :class:`LanguageInfo` and its :class:`Document` list).
:meth:`Corpus.split_heldout` cuts it into profiling and evaluation parts by whole documents.
"""

from __future__ import annotations

from babelmoe.corpus.base import (
    DEFAULT_HELDOUT_FRAC,
    Corpus,
    Document,
    LanguageCorpus,
    heldout_split,
)
from babelmoe.corpus.folder import load_folder
from babelmoe.corpus.hf import load_hf
from babelmoe.corpus.languages import (
    LanguageInfo,
    detect_script,
    genealogical_similarity,
    genealogy,
    language_info,
    shared_lineage,
)
from babelmoe.corpus.load import PAPER_LANGUAGES, load_corpus
from babelmoe.corpus.udhr import UdhrVersion, ensure_udhr, list_udhr, load_udhr, locate_udhr

__all__ = [
    "DEFAULT_HELDOUT_FRAC",
    "PAPER_LANGUAGES",
    "Corpus",
    "Document",
    "LanguageCorpus",
    "LanguageInfo",
    "UdhrVersion",
    "detect_script",
    "ensure_udhr",
    "genealogical_similarity",
    "genealogy",
    "heldout_split",
    "language_info",
    "list_udhr",
    "load_corpus",
    "load_folder",
    "load_hf",
    "load_udhr",
    "locate_udhr",
    "shared_lineage",
]
