"""User corpora: a folder of ``<lang>.txt`` and/or ``<lang>.jsonl`` files.

* ``<lang>.txt``: UTF-8 text; documents are separated by one or more blank lines (lines with only
  whitespace count as blank). A document's id is ``<file name>:<line where it starts>``.
* ``<lang>.jsonl``: one JSON object per line with a non-empty string ``text`` and an optional
  ``id`` (default ``<file name>:<line>``); blank lines are skipped.

``<lang>`` is an ISO 639-1/3 code or a BCP 47 tag (``en``, ``eng``, ``zh-Hant``, ``pt_BR``). One
language may not have both a ``.txt`` and a ``.jsonl`` file. An empty file, a binary or non-UTF-8
file, invalid JSON or a line without text is an error naming the file and the line.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from babelmoe.corpus.base import Document, LanguageCorpus
from babelmoe.corpus.languages import language_info, resolve_code, split_bcp47
from babelmoe.errors import BabelmoeError

logger = logging.getLogger(__name__)

SUFFIXES = (".txt", ".jsonl")


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise BabelmoeError(f"{path} is empty", "put documents in it or remove it")
    if b"\0" in data:
        line = data[: data.index(b"\0")].count(b"\n") + 1
        raise BabelmoeError(
            f"{path} line {line}: NUL byte, this looks like a binary file", "use UTF-8 text"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BabelmoeError(
            f"{path} line {line}: not valid UTF-8 (byte {exc.object[exc.start]:#04x})",
            "re-encode the file as UTF-8",
        ) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_txt(path: Path) -> list[Document]:
    """Documents of a ``.txt`` file: blocks of non-blank lines, separated by blank lines."""
    documents = []
    current: list[str] = []
    start = 0
    for number, line in enumerate([*_read_text(path).split("\n"), ""], start=1):
        if line.strip():
            if not current:
                start = number
            current.append(line)
        elif current:
            documents.append(Document(id=f"{path.name}:{start}", text="\n".join(current).strip()))
            current = []
    return documents


def read_jsonl(path: Path) -> list[Document]:
    """Documents of a ``.jsonl`` file: the ``text`` (and optional ``id``) of each object."""
    text = _read_text(path)
    documents = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BabelmoeError(
                f"{where}: invalid JSON ({exc.msg})", "one JSON object per line"
            ) from exc
        if not isinstance(obj, dict):
            raise BabelmoeError(f"{where}: not a JSON object", 'write {"text": "..."} per line')
        body = obj.get("text")
        if not isinstance(body, str) or not body.strip():
            raise BabelmoeError(
                f"{where}: no text (a non-empty string field 'text' is required)",
                'write {"text": "...", "id": "..."} per line',
            )
        doc_id = obj.get("id")
        documents.append(
            Document(
                id=str(doc_id) if doc_id is not None else f"{path.name}:{number}", text=body.strip()
            )
        )
    return documents


def folder_files(folder: Path) -> dict[str, Path]:
    """Language tag (file stem) -> file, for the corpus files in ``folder``, sorted by tag.

    Raises:
        BabelmoeError: when the folder is missing, holds no corpus file, or a language has both
            a ``.txt`` and a ``.jsonl`` file.
    """
    if not folder.is_dir():
        raise BabelmoeError(
            f"no such corpus folder: {folder}", "pass a folder of <lang>.txt/.jsonl"
        )
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix not in SUFFIXES or not path.is_file() or path.name.startswith("."):
            continue
        if path.stem in files:
            raise BabelmoeError(
                f"{folder} has both {files[path.stem].name} and {path.name}",
                "keep one file per language",
            )
        files[path.stem] = path
    if not files:
        raise BabelmoeError(f"{folder} has no <lang>.txt or <lang>.jsonl file", "add some")
    return files


def _same_language(a: str, b: str) -> bool:
    try:
        return resolve_code(a)[0] == resolve_code(b)[0]
    except BabelmoeError:
        return False


def _find_file(files: dict[str, Path], tag: str) -> Path | None:
    """The file for ``tag``: same stem (any case), else the one file of the same ISO 639-3 code
    when the tag has no script subtag (``eng`` finds ``en.txt``)."""
    for stem, path in files.items():
        if stem.lower() == tag.lower():
            return path
    if split_bcp47(tag)[1] is not None:
        return None
    same = [path for stem, path in files.items() if _same_language(stem, tag)]
    return same[0] if len(same) == 1 else None


def load_folder(
    folder: str | os.PathLike[str],
    languages: list[str] | None = None,
    max_documents: int | None = None,
) -> list[LanguageCorpus]:
    """Load a folder corpus.

    Args:
        folder: the folder.
        languages: file stems to load, in this order (default: every corpus file, sorted).
        max_documents: keep at most this many documents per language (the first ones).

    Raises:
        BabelmoeError: for a missing language file, an unknown language code in a file name, or
            any bad file (see the module docstring).
    """
    root = Path(folder).expanduser()
    files = folder_files(root)
    wanted = list(files) if languages is None else list(languages)
    out = []
    for tag in wanted:
        path = _find_file(files, tag)
        if path is None:
            for suffix in (".txt", ".jsonl"):
                if (root / f"{tag}{suffix}").is_dir():
                    raise BabelmoeError(
                        f"{root / (tag + suffix)} is a folder, not a corpus file",
                        f"put the {tag} documents in a file of that name (one document per "
                        "paragraph, or one JSON object per line)",
                    )
            raise BabelmoeError(
                f"no {tag}.txt or {tag}.jsonl in {root}", f"available: {', '.join(files)}"
            )
        documents = read_txt(path) if path.suffix == ".txt" else read_jsonl(path)
        if max_documents is not None:
            documents = documents[:max_documents]
        try:
            info = language_info(path.stem, text="\n".join(d.text for d in documents[:200]))
        except BabelmoeError as exc:
            raise BabelmoeError(
                f"{path}: the file name is no language code ({exc.problem})",
                "name files <ISO 639 code or BCP 47 tag>.txt, e.g. en.txt, zh-Hant.jsonl",
            ) from exc
        logger.info("%s: %s, %d documents", path, info.name, len(documents))
        out.append(
            LanguageCorpus(lang=info, documents=documents, source=str(root), variant=path.stem)
        )
    return out
