"""Hugging Face datasets, streamed with ``datasets.load_dataset(..., streaming=True)``.

``datasets`` is the optional extra ``hf`` (``pip install 'babelmoe[hf]'``) and is imported only
here, when such a source is used. Each language is one stream; only the first ``max_documents``
non-empty rows are read, so a multi-terabyte dataset (CulturaX, ROOTS, OSCAR) costs a few
requests, not a download.

How a language finds its rows (``languages`` are the codes the user gives):

* ``config`` containing ``{lang}``: the config is formatted per language (FLORES-style:
  ``"{lang}_Latn"``);
* no ``config`` and no ``lang_field`` and no ``data_files``: the language code is the config
  (CulturaX/OSCAR-style: one config per language);
* ``lang_field``: one stream of the dataset (``config`` as given), filtered to rows whose
  ``lang_field`` equals the language code;
* ``data_files``: a ``{lang}`` template (``"data/{lang}.jsonl"``) or a mapping language -> files,
  for builders such as ``json``/``parquet``/``text`` reading files.

A document is a row's ``text_field``; its id is the row's ``id_field`` when present, else
``<split>:<row number>``. Rows with an empty text are skipped; a dataset without the text field
is an error listing the fields it has.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from babelmoe.corpus.base import Document, LanguageCorpus
from babelmoe.corpus.languages import language_info
from babelmoe.errors import BabelmoeError

logger = logging.getLogger(__name__)

DEFAULT_MAX_DOCUMENTS = 1000


def parse_hf_source(source: str) -> tuple[str, str | None]:
    """``hf:<dataset>[:<config>]`` -> (dataset, config or ``None``)."""
    if not source.startswith("hf:") or len(source) <= 3:
        raise BabelmoeError(
            f"not a Hugging Face source: {source!r}", "write hf:<dataset>[:<config>]"
        )
    dataset, _, config = source[3:].partition(":")
    if not dataset:
        raise BabelmoeError(f"no dataset name in {source!r}", "write hf:<dataset>[:<config>]")
    return dataset, (config or None)


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError as exc:
        raise BabelmoeError(
            "Hugging Face corpora need the package 'datasets'", "pip install 'babelmoe[hf]'"
        ) from exc
    return datasets


def _rows(
    dataset: str,
    config: str | None,
    split: str,
    data_files: Any,
    load_kwargs: Mapping[str, Any],
) -> Iterable[Mapping[str, Any]]:
    datasets = _import_datasets()
    kwargs = dict(load_kwargs)
    if data_files is not None:
        kwargs["data_files"] = data_files
    try:
        return datasets.load_dataset(dataset, config, split=split, streaming=True, **kwargs)
    except Exception as exc:  # datasets raises many types (hub, config, file errors)
        what = f"{dataset}" + (f" config {config!r}" if config else "")
        raise BabelmoeError(
            f"cannot load Hugging Face dataset {what} split {split!r}: {type(exc).__name__}: {exc}",
            "check the dataset name, config and split, and network access to the hub",
        ) from exc


def load_hf(
    dataset: str,
    languages: list[str],
    config: str | None = None,
    split: str = "train",
    text_field: str = "text",
    id_field: str = "id",
    lang_field: str | None = None,
    data_files: str | Mapping[str, Any] | None = None,
    max_documents: int | None = DEFAULT_MAX_DOCUMENTS,
    load_kwargs: Mapping[str, Any] | None = None,
) -> list[LanguageCorpus]:
    """Stream one Hugging Face dataset into per-language documents.

    Args:
        dataset: the dataset's hub id or a builder name (``json``, ``parquet``) or a local path.
        languages: ISO 639 codes / BCP 47 tags, as the dataset names them (they also give each
            language's metadata).
        config: dataset config; ``{lang}`` in it is replaced by the language (see the module doc).
        split: the split to stream.
        text_field: the row field holding the text.
        id_field: the row field holding a document id, if any.
        lang_field: filter rows on this field being the language code (one stream, many languages).
        data_files: ``{lang}`` template or mapping language -> files, passed to ``load_dataset``.
        max_documents: at most this many documents per language (``None``: the whole stream).
        load_kwargs: more keyword arguments for ``datasets.load_dataset`` (``revision``, ``token``).

    Raises:
        BabelmoeError: when ``datasets`` is missing, the dataset cannot be loaded, the text field
            is absent, or a language has no text.
    """
    if not languages:
        raise BabelmoeError(
            "a Hugging Face corpus needs languages", "pass e.g. languages=['en', 'fr']"
        )
    if max_documents is not None and max_documents < 1:
        raise BabelmoeError(f"max_documents must be >= 1, got {max_documents}")
    if (
        config is not None
        and "{lang}" not in config
        and lang_field is None
        and data_files is None
        and len(languages) > 1
    ):
        raise BabelmoeError(
            f"config {config!r} is one config for {len(languages)} languages",
            "put {lang} in the config, give lang_field to filter rows, or data_files per language",
        )
    source = f"hf:{dataset}" + (f":{config}" if config else "")
    out = []
    for lang in languages:
        lang_config = config.replace("{lang}", lang) if config and "{lang}" in config else config
        if lang_config is None and lang_field is None and data_files is None:
            lang_config = lang
        if isinstance(data_files, str):
            files: Any = data_files.replace("{lang}", lang)
        elif isinstance(data_files, Mapping):
            if lang not in data_files:
                raise BabelmoeError(f"data_files has no entry for {lang!r}", "add one per language")
            files = data_files[lang]
        else:
            files = None
        rows: Iterable[Mapping[str, Any]] = _rows(
            dataset, lang_config, split, files, load_kwargs or {}
        )
        if lang_field is not None:
            rows = (row for row in rows if str(row.get(lang_field)) == lang)
        try:
            documents = _documents(rows, text_field, id_field, split, source, max_documents)
        except BabelmoeError:
            raise
        except Exception as exc:  # streaming defers errors (missing files, network) to here
            raise BabelmoeError(
                f"reading {source} ({lang!r}, split {split!r}) failed: {type(exc).__name__}: {exc}",
                "check the dataset files, config and network access to the hub",
            ) from exc
        if not documents:
            raise BabelmoeError(
                f"language {lang!r} has no text in {source} split {split!r}",
                "check the language code, config, lang_field and text_field",
            )
        info = language_info(lang, text="\n".join(d.text for d in documents[:200]))
        logger.info("%s %s: %d documents", source, lang, len(documents))
        out.append(
            LanguageCorpus(lang=info, documents=documents, source=source, variant=lang_config)
        )
    return out


def _documents(
    rows: Iterable[Mapping[str, Any]],
    text_field: str,
    id_field: str,
    split: str,
    source: str,
    max_documents: int | None,
) -> list[Document]:
    """The first ``max_documents`` non-empty texts of a row stream, as documents."""
    documents: list[Document] = []
    for number, row in enumerate(rows):
        if number == 0 and text_field not in row:
            raise BabelmoeError(
                f"{source} rows have no field {text_field!r} (fields: {', '.join(map(str, row))})",
                "pass text_field=<one of those>",
            )
        body = row.get(text_field)
        if not isinstance(body, str) or not body.strip():
            continue
        doc_id = row.get(id_field)
        doc_id = str(doc_id) if doc_id is not None else f"{split}:{number}"
        documents.append(Document(id=doc_id, text=body.strip()))
        if max_documents is not None and len(documents) >= max_documents:
            break
    return documents
