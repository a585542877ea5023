"""The stage of ``babelmoe languages``: what a corpus offers, under a model's tokenizer.

``list_languages(config)`` builds the catalogue of :mod:`babelmoe.corpus.catalogue` (every
language version with its family, genus, script shares, documents and tokens under the model's
tokenizer), filters it and returns the rows; :func:`format_table` renders them for a terminal.
Only the tokenizer is loaded, never the weights. The unfiltered catalogue is cached as JSON in
``<cache>/catalogue/`` keyed by the corpus, the tokenizer and the held-out split, so that
trying filters costs a second, not a minute; ``refresh`` rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from babelmoe import artifacts
from babelmoe.corpus.catalogue import CatalogueEntry, corpus_catalogue, filter_catalogue
from babelmoe.errors import BabelmoeError
from babelmoe.stages.config import LanguagesConfig

logger = logging.getLogger(__name__)

CATALOGUE_SCHEMA = 2  # 2: a bare code's default prefers the language's usual script (CLDR)


def load_tokenizer(source: str) -> Any:
    """The tokenizer of a model source (``default``, a folder, a hub id), without the weights."""
    from transformers import AutoTokenizer

    from babelmoe.models.loading import default_model_dir

    path = str(default_model_dir()) if source == "default" else source
    local = source.startswith((".", "/", "~")) or Path(source).expanduser().exists()
    if source != "default" and local and not Path(source).expanduser().exists():
        what = "GGUF file" if source.endswith(".gguf") else "model folder"
        raise BabelmoeError(
            f"no such {what}: {source}", "pass 'default', an existing model folder or a hub id"
        )
    if source.endswith(".gguf"):
        gguf = Path(source).expanduser()
        return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise BabelmoeError(
            f"cannot load the tokenizer of {source!r}: {str(exc).splitlines()[0][:200]}",
            "pass 'default', a model folder, a .gguf file or a reachable hub id",
        ) from None


def _corpus_stamp(corpus: str) -> str:
    """What identifies the corpus files (the UDHR index, or the folder's files and sizes)."""
    if corpus == "udhr":
        from babelmoe.corpus.udhr import ensure_udhr

        root = ensure_udhr()
        index = root / "index.js"
        package = root / "package.json"
        version = json.loads(package.read_text()).get("version") if package.is_file() else None
        return f"udhr:{version}:{index.stat().st_size}"
    folder = Path(corpus).expanduser()
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir())
    return f"folder:{folder.resolve()}:{files}"


def _tokenizer_stamp(tokenizer: Any) -> str:
    vocab = tokenizer.get_vocab() if tokenizer is not None else {}
    digest = hashlib.sha256(json.dumps(sorted(vocab.items())).encode()).hexdigest()
    return f"{type(tokenizer).__name__}:{len(vocab)}:{digest}"


def _cache_path(config: LanguagesConfig, tokenizer: Any) -> Path:
    from babelmoe.models.loading import cache_dir

    key = json.dumps(
        [
            CATALOGUE_SCHEMA,
            _corpus_stamp(config.corpus),
            _tokenizer_stamp(tokenizer) if tokenizer is not None else None,
            config.heldout_frac,
            config.heldout_seed,
        ]
    )
    return cache_dir() / "catalogue" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"


def _from_dict(data: dict[str, Any]) -> CatalogueEntry:
    known = {k: v for k, v in data.items() if k in CatalogueEntry.__dataclass_fields__}
    known["classification"] = tuple(known.get("classification") or ())
    return CatalogueEntry(**known)


def catalogue(config: LanguagesConfig) -> list[CatalogueEntry]:
    """The whole catalogue of ``config.corpus`` (cached; see the module docstring)."""
    tokenizer = load_tokenizer(config.model) if config.model is not None else None
    path = _cache_path(config, tokenizer)
    if path.is_file() and not config.refresh:
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))["rows"]
            logger.info("catalogue from cache %s", path)
            return [_from_dict(row) for row in rows]
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("ignoring an unreadable catalogue cache %s", path)
    logger.info("building the catalogue of %s (once; cached in %s)", config.corpus, path.parent)
    entries = corpus_catalogue(
        config.corpus, tokenizer, heldout_frac=config.heldout_frac, seed=config.heldout_seed
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    artifacts.atomic_write_json(
        path,
        {
            "schema_version": CATALOGUE_SCHEMA,
            "corpus": config.corpus,
            "model": config.model,
            "rows": [e.to_dict() for e in entries],
        },
    )
    return entries


def check_corpus(corpus: str) -> None:
    """Refuse a corpus that is neither ``udhr`` nor an existing folder (an input problem, exit
    2, before anything is read or written)."""
    if corpus == "udhr":
        return
    folder = Path(corpus).expanduser()
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise BabelmoeError(
            f"corpus {corpus} {what}", "pass udhr or a folder of <lang>.txt / <lang>.jsonl files"
        )


def list_languages(config: LanguagesConfig) -> list[CatalogueEntry]:
    """The catalogue rows that pass ``config``'s filters, in the corpus's order."""
    check_corpus(config.corpus)
    return filter_catalogue(
        catalogue(config),
        family=config.family,
        script=config.script,
        min_tokens=config.min_tokens,
        min_script_share=config.min_script_share,
        defaults_only=config.defaults_only,
    )


COLUMNS = ("request", "code", "name", "family", "genus", "scripts", "tokens", "docs")


def _cells(entry: CatalogueEntry) -> list[str]:
    star = "" if entry.is_default else " (alt)"
    return [
        entry.request + star,
        entry.code,
        entry.name,
        entry.family or "-",
        entry.genus or "-",
        entry.scripts_text() or "-",
        "-" if entry.profile_tokens is None else f"{entry.profile_tokens:,}",
        str(entry.documents),
    ]


def format_table(entries: list[CatalogueEntry], max_width: int = 28) -> str:
    """A plain-text table, one row per version; long cells are shortened with '...'."""

    def cut(text: str) -> str:
        return text if len(text) <= max_width else text[: max_width - 3] + "..."

    rows = [list(COLUMNS)] + [[cut(c) for c in _cells(e)] for e in entries]
    widths = [max(len(r[k]) for r in rows) for k in range(len(COLUMNS))]
    right = {"tokens", "docs"}
    lines = [
        "  ".join(
            cell.rjust(w) if COLUMNS[k] in right else cell.ljust(w)
            for k, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_rows(entries: list[CatalogueEntry], path: Path) -> Path:
    """Write the rows as JSON (``.json``) or CSV (anything else); returns the path."""
    import csv
    import io

    rows = [e.to_dict() for e in entries]
    if path.suffix == ".json":
        artifacts.atomic_write_json(path, rows)
        return path
    columns = [
        "request", "code", "bcp47", "name", "family", "genus", "script", "scripts",
        "documents", "characters", "tokens", "profile_tokens", "chars_per_token", "stage",
        "is_default", "classification",
    ]  # fmt: skip
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        row = dict(row)
        row["scripts"] = " ".join(f"{k}:{v:.4f}" for k, v in row["scripts"].items())
        row["classification"] = " > ".join(row["classification"])
        writer.writerow(row)
    artifacts.atomic_write_text(path, buffer.getvalue())
    return path
