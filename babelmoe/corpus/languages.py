"""Language metadata: codes, names, Glottolog genealogy, script and writing direction.

Every field comes from maintained data, never from a table written here:

* codes and names: ISO 639-1/2/3 from ``iso639-lang`` (its ISO 639-3 tables also say which
  languages are living and which individual languages a macrolanguage covers);
* genealogy: the Glottolog lineage of each language as bundled by ``urielplus`` (URIEL+), in
  ``database/urielplus_csvs/lang_fam_geo.csv`` (glottocode -> lineage, root first) and
  ``uriel_glottocode_map.csv`` (ISO 639-3 -> glottocode);
* script and direction: the Unicode Script property of the text's letters
  (``fontTools.unicodedata``, which ships Unicode's Scripts.txt), or the BCP 47 script subtag
  when there is no text.

A text's script is a distribution, not one label: ``scripts`` holds the share of its letters in
each Unicode script (Japanese UDHR: about half Han, the rest Hiragana and Katakana), and
``script`` is the majority label of that distribution, kept for tables and figures that need one
name. Letters are characters of Unicode general category L*; characters whose Script is Common,
Inherited or Unknown (``Zyyy``, ``Zinh``, ``Zzzz``: the prolonged sound mark, combining marks)
count for no script. :func:`script_overlap_distance` compares two distributions.

Definitions:

* ``classification``: the Glottolog lineage from the top-level family down to the language's
  parent (the language itself excluded), e.g. French: ``['Indo-European', 'Classical
  Indo-European', 'Italic', ..., 'Romance', ...]``.
* ``family``: the lineage's root. An isolate (empty lineage) is its own family, named as Glottolog
  names the language. Glottolog's pseudo-families (``Unclassifiable``, ``Pidgin``, ``Sign
  Language``, ``Artificial Language`` ...) are not genealogical units: family and genus are
  ``None`` there, and the lineage is kept as it is.
* ``genus``: the major branch of the family that the language belongs to, defined on the living
  languages only: walking down the lineage, nodes that contain every living language of the family
  (e.g. Glottolog's ``Classical Indo-European``, which leaves out only the extinct Anatolian and
  Tocharian) are skipped, and the first node that contains fewer is the genus: English ->
  ``Germanic``, French/Spanish/Portuguese -> ``Italic`` (whose living members are exactly the
  Romance languages), Hindi/Bengali/Urdu -> ``Indo-Iranian``, Arabic -> ``Semitic``, Mandarin ->
  ``Sinitic``. A language directly under its family has the family as genus. This is the first
  split of Glottolog's tree among living languages; it is coarser than WALS genera for large
  families (Indo-Iranian, not Indic and Iranian), so statistics that need finer genealogy should
  use ``classification`` (see :func:`shared_lineage`).
* ISO 639-3 macrolanguages (``zho``, ``ara``, ``msa`` ...) are not Glottolog languoids: their
  lineage is the longest common lineage of their member languages (``zho`` -> ``['Sino-Tibetan',
  'Sinitic']``). An individual language that Glottolog's table lacks but that belongs to a
  classified macrolanguage (Montenegrin ``cnr`` in Serbo-Croatian ``hbs``) gets the
  macrolanguage's lineage plus the macrolanguage itself.
* Anything not found is ``None`` (or an empty lineage), never a guess.
"""

from __future__ import annotations

import csv
import difflib
import functools
import logging
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

from babelmoe.errors import BabelmoeError

logger = logging.getLogger(__name__)

# Glottolog's top-level pseudo-families: categories, not genealogical units.
GLOTTOLOG_PSEUDO_FAMILIES = frozenset(
    {
        "Artificial Language",
        "Bookkeeping",
        "Mixed Language",
        "Pidgin",
        "Sign Language",
        "Speech Register",
        "Unattested",
        "Unclassifiable",
    }
)

# Unicode Script values that are not a writing system of their own.
_NEUTRAL_SCRIPTS = frozenset({"Zyyy", "Zinh", "Zzzz"})


@dataclass
class LanguageInfo:
    """What the toolkit knows about one language (one row of the analyses' language axis).

    Attributes:
        code: ISO 639-3 code (``eng``, ``cmn``; a macrolanguage code such as ``zho`` when that is
            all the source says).
        bcp47: BCP 47 tag as the source gives it, or the shortest ISO code (``en``, ``zh-Hant``).
        name: English name (the source's own name when it has one, else ISO 639-3's).
        family: Glottolog top-level family (``Indo-European``); ``None`` when unknown or when
            Glottolog only has a pseudo-family for it.
        genus: major branch of the family among living languages (see the module docstring);
            ``None`` when unknown.
        script: Unicode script name of the text (``Latin``, ``Arabic``, ``Devanagari``,
            ``Bengali``, ``Han``); ``None`` when unknown.
        classification: Glottolog lineage, top-level family first, the language itself excluded;
            empty when unknown or for an isolate.
        direction: writing direction, ``ltr``, ``rtl`` or ``ttb``.
        glottocode: Glottolog identifier of the language (``stan1293``), ``None`` when unknown.
        script_code: ISO 15924 code of ``script`` (``Latn``, ``Hani``), ``None`` when unknown.
        scripts: ISO 15924 code -> share of the text's letters in that script, largest first,
            summing to 1 (``{'Hani': 0.47, 'Hira': 0.43, 'Kana': 0.10}``); ``{script_code: 1.0}``
            when only a script subtag is known, empty when nothing is.
    """

    code: str
    bcp47: str
    name: str
    family: str | None
    genus: str | None
    script: str | None
    classification: list[str] = field(default_factory=list)
    direction: str = "ltr"
    glottocode: str | None = None
    script_code: str | None = None
    scripts: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of all fields (for artifact metadata)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LanguageInfo:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["classification"] = list(known.get("classification") or [])
        known["scripts"] = {str(k): float(v) for k, v in (known.get("scripts") or {}).items()}
        return cls(**known)


@dataclass(frozen=True)
class Genealogy:
    """Glottolog genealogy of one language code (the part of :class:`LanguageInfo` it fills)."""

    family: str | None
    genus: str | None
    classification: tuple[str, ...]
    glottocode: str | None


# ---------------------------------------------------------------------------------------------
# ISO 639 codes


def _iso639():
    import iso639

    return iso639


@functools.lru_cache(maxsize=4096)
def iso_language(code: str) -> Any | None:
    """The iso639 ``Lang`` for an ISO 639-1/2/3 code or a name, or ``None``."""
    iso639 = _iso639()
    try:
        return iso639.Lang(code)
    except Exception:  # iso639 raises its own InvalidLanguageValue / DeprecatedLanguageValue
        return None


@functools.lru_cache(maxsize=1)
def _all_iso_codes() -> tuple[tuple[str, str], ...]:
    """(ISO 639-3 code, name) for every ISO 639-3 language."""
    return tuple((lang.pt3, lang.name) for lang in _iso639().iter_langs() if lang.pt3)


def near_iso_codes(code: str, n: int = 5) -> list[str]:
    """Up to ``n`` ISO 639-3 codes or names that look like ``code`` (for error messages)."""
    pairs = _all_iso_codes()
    by_name = {name.lower(): f"{pt3} ({name})" for pt3, name in pairs}
    by_code = {pt3: f"{pt3} ({name})" for pt3, name in pairs}
    hits = difflib.get_close_matches(code.lower(), list(by_name), n=n, cutoff=0.75)
    out = [by_name[h] for h in hits]
    out += [by_code[h] for h in difflib.get_close_matches(code.lower(), list(by_code), n=n)]
    return list(dict.fromkeys(out))[:n]


def split_bcp47(tag: str) -> tuple[str, str | None]:
    """(primary language subtag, script subtag or ``None``) of a BCP 47-like tag.

    Accepts ``-`` or ``_`` as separator: ``zh-Hant`` -> ``('zh', 'Hant')``, ``pt_BR`` ->
    ``('pt', None)``.
    """
    parts = [p for p in tag.replace("_", "-").split("-") if p]
    if not parts:
        return "", None
    script = next((p.title() for p in parts[1:] if len(p) == 4 and p.isalpha()), None)
    return parts[0].lower(), script


def resolve_code(code: str) -> tuple[str, str]:
    """(ISO 639-3 code, ISO name) for an ISO 639-1/2/3 code or a BCP 47 tag.

    Raises:
        BabelmoeError: when the primary subtag is no ISO 639 code, with near matches.
    """
    primary, _ = split_bcp47(code.strip())
    lang = iso_language(primary) if 2 <= len(primary) <= 3 else None
    if lang is None or not lang.pt3:
        near = near_iso_codes(primary or code)
        hint = f"did you mean: {', '.join(near)}" if near else "use an ISO 639-1/3 code"
        raise BabelmoeError(f"unknown language code {code!r}", hint)
    return lang.pt3, lang.name


def bcp47_for(code3: str) -> str:
    """The shortest ISO code for an ISO 639-3 code (what BCP 47 uses): ``eng`` -> ``en``."""
    lang = iso_language(code3)
    return (lang.pt1 or lang.pt3) if lang is not None else code3


@functools.lru_cache(maxsize=1)
def _living_codes() -> frozenset[str]:
    """ISO 639-3 codes whose ISO language type is Living."""
    return frozenset(lang.pt3 for lang in _iso639().iter_langs() if lang.type() == "Living")


# ---------------------------------------------------------------------------------------------
# Glottolog genealogy (URIEL+ tables)


@dataclass(frozen=True)
class _GlottologTables:
    iso_to_glotto: dict[str, str]
    lineage: dict[str, tuple[str, ...]]  # glottocode -> lineage, root first
    names: dict[str, str]  # glottocode -> Glottolog name
    living: Counter  # lineage prefix (tuple) -> number of living ISO languages under it


def _urielplus_csv(name: str):
    try:
        root = resources.files("urielplus")
    except ModuleNotFoundError as exc:
        raise BabelmoeError(
            "language metadata needs the package 'urielplus'", "pip install urielplus"
        ) from exc
    path = root / "database" / "urielplus_csvs" / name
    if not path.is_file():
        raise BabelmoeError(
            f"urielplus has no {name} (this version bundles its data differently)",
            "pip install 'urielplus>=1.3,<2'",
        )
    return path


@functools.lru_cache(maxsize=1)
def _glottolog() -> _GlottologTables:
    with _urielplus_csv("uriel_glottocode_map.csv").open(encoding="utf-8", newline="") as fh:
        iso_to_glotto = {
            row["iso_code"].strip(): row["glottocode"].strip()
            for row in csv.DictReader(fh)
            if row["iso_code"].strip() and row["glottocode"].strip()
        }
    lineage: dict[str, tuple[str, ...]] = {}
    names: dict[str, str] = {}
    with _urielplus_csv("lang_fam_geo.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            glotto = row["language_id"].strip()
            parts = tuple(
                p.strip()
                for p in (row["lineage"] or "").split(",")
                if p.strip() not in ("", "<NA>")
            )
            # URIEL+ keeps the deepest lineage when a languoid has several rows.
            if glotto not in lineage or len(parts) > len(lineage[glotto]):
                lineage[glotto] = parts
            names.setdefault(glotto, (row["language_name"] or "").strip())
    living_codes = _living_codes()
    living: Counter = Counter()
    for iso, glotto in iso_to_glotto.items():
        if iso in living_codes and glotto in lineage:
            parts = lineage[glotto]
            for depth in range(1, len(parts) + 1):
                living[parts[:depth]] += 1
    logger.debug("Glottolog tables: %d ISO codes, %d languoids", len(iso_to_glotto), len(lineage))
    return _GlottologTables(iso_to_glotto, lineage, names, living)


def _common_prefix(lineages: list[tuple[str, ...]]) -> tuple[str, ...]:
    if not lineages:
        return ()
    first = lineages[0]
    depth = 0
    while depth < len(first) and all(len(x) > depth and x[depth] == first[depth] for x in lineages):
        depth += 1
    return first[:depth]


def _raw_lineage(code3: str) -> tuple[tuple[str, ...] | None, str | None, str | None]:
    """(lineage or None when unknown, glottocode, Glottolog name) for an ISO 639-3 code."""
    tables = _glottolog()
    glotto = tables.iso_to_glotto.get(code3)
    if glotto is not None and glotto in tables.lineage:
        return tables.lineage[glotto], glotto, tables.names.get(glotto)
    lang = iso_language(code3)
    if lang is None:
        return None, None, None
    if lang.scope() == "Macrolanguage":
        known = [
            tables.lineage[tables.iso_to_glotto[m.pt3]]
            for m in lang.individuals()
            if m.pt3 in tables.iso_to_glotto and tables.iso_to_glotto[m.pt3] in tables.lineage
        ]
        # Members must agree on a family, else the macrolanguage is not classifiable.
        prefix = _common_prefix([k for k in known if k])
        return (prefix if prefix else None), None, None
    macro = lang.macro()
    if macro is not None and macro.pt3 != code3:
        parent, parent_glotto, parent_name = _raw_lineage(macro.pt3)
        if parent is not None and parent_glotto is not None and parent_name:
            return (*parent, parent_name), None, None
        return parent, None, None
    return None, None, None


@functools.lru_cache(maxsize=4096)
def genealogy(code: str) -> Genealogy:
    """Glottolog family, genus and lineage of an ISO 639-3 code (``None`` parts when unknown)."""
    lineage, glotto, glotto_name = _raw_lineage(code)
    if lineage is None:
        return Genealogy(None, None, (), glotto)
    if not lineage:  # an isolate: its own family (Glottolog's convention)
        own = glotto_name or None
        return Genealogy(own, own, (), glotto)
    family = lineage[0]
    if family in GLOTTOLOG_PSEUDO_FAMILIES:
        return Genealogy(None, None, lineage, glotto)
    living = _glottolog().living
    in_family = living[lineage[:1]]
    genus = family
    for depth in range(2, len(lineage) + 1):
        if living[lineage[:depth]] < in_family:
            genus = lineage[depth - 1]
            break
    return Genealogy(family, genus, lineage, glotto)


@functools.lru_cache(maxsize=1)
def glottolog_family_depths() -> dict[str, int]:
    """Glottolog family -> length of its longest path (lineage plus the language) over every
    language that has an ISO 639-3 code (URIEL+'s tables): the depth by which a graded
    genealogical distance normalises each family. Pseudo-families are left out."""
    tables = _glottolog()
    depths: dict[str, int] = {}
    for glotto in set(tables.iso_to_glotto.values()):
        parts = tables.lineage.get(glotto)
        if parts and parts[0] not in GLOTTOLOG_PSEUDO_FAMILIES:
            depths[parts[0]] = max(depths.get(parts[0], 0), len(parts) + 1)
    return depths


@functools.lru_cache(maxsize=1)
def _glottolog_coordinates() -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    with _urielplus_csv("lang_fam_geo.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                lat, lon = float(row["latitude"]), float(row["longitude"])
            except (TypeError, ValueError):
                continue
            if lat == lat and lon == lon:  # not NaN
                out.setdefault(row["language_id"].strip(), (lat, lon))
    return out


def glottolog_coordinates(code: str, glottocode: str | None = None) -> tuple[float, float] | None:
    """(latitude, longitude) of a language in Glottolog (as bundled by URIEL+), by glottocode or
    ISO 639-3 code; ``None`` when Glottolog has none (macrolanguages, retired codes)."""
    glotto = glottocode or _glottolog().iso_to_glotto.get(code)
    return _glottolog_coordinates().get(glotto) if glotto else None


def shared_lineage(a: LanguageInfo, b: LanguageInfo) -> list[str]:
    """The Glottolog nodes two languages share (their common lineage prefix, root first)."""
    return list(_common_prefix([tuple(a.classification), tuple(b.classification)]))


def genealogical_similarity(a: LanguageInfo, b: LanguageInfo) -> float:
    """Share of lineage nodes two languages have in common: shared / longer lineage, in [0, 1].

    1.0 for the same lineage, 0.0 for different families or unknown classification.
    """
    longer = max(len(a.classification), len(b.classification))
    return len(shared_lineage(a, b)) / longer if longer else 0.0


# ---------------------------------------------------------------------------------------------
# Script and direction


def _script_of(char: str) -> str:
    from fontTools import unicodedata as uni

    return uni.script(char)


def script_counts(text: str) -> Counter:
    """ISO 15924 code -> number of letters of ``text`` in that Unicode script."""
    counts: Counter = Counter()
    for char in text:
        if unicodedata.category(char).startswith("L"):
            code = _script_of(char)
            if code not in _NEUTRAL_SCRIPTS:
                counts[code] += 1
    return counts


def script_shares(text: str, digits: int = 4) -> dict[str, float]:
    """ISO 15924 code -> share of the text's letters in that script, largest share first.

    Shares are rounded to ``digits`` decimals (for stable JSON); scripts whose share rounds to 0
    are dropped. Empty when the text has no letter of a script.
    ``script_shares("日本の人権")`` -> ``{'Hani': 0.8, 'Hira': 0.2}``.
    """
    counts = script_counts(text)
    total = sum(counts.values())
    if not total:
        return {}
    order = sorted(counts, key=lambda code: (-counts[code], code))
    shares = {code: round(counts[code] / total, digits) for code in order}
    return {code: share for code, share in shares.items() if share > 0}


def script_distribution(language: dict[str, Any] | LanguageInfo) -> dict[str, float]:
    """A language's script distribution: its ``scripts`` field, or a one-hot distribution on its
    majority ``script_code`` (metadata written before ``scripts`` existed), or empty."""
    data = language.to_dict() if isinstance(language, LanguageInfo) else language
    shares = data.get("scripts") or {}
    if shares:
        total = float(sum(shares.values()))
        return {str(k): float(v) / total for k, v in shares.items()}
    code = data.get("script_code") or data.get("script")
    return {str(code): 1.0} if code else {}


def script_overlap_distance(a: dict[str, float], b: dict[str, float]) -> float:
    """1 - sum over scripts of min(share in a, share in b): the total variation distance.

    0 for identical distributions, 1 for disjoint scripts, 0.53 for a Japanese text (47% Han)
    against a Chinese one (100% Han). An empty distribution (unknown script) is at distance 1
    from everything, itself included, so an unknown script is never taken as shared.
    """
    if not a or not b:
        return 1.0
    overlap = sum(min(share, b.get(code, 0.0)) for code, share in a.items())
    return float(min(1.0, max(0.0, 1.0 - overlap)))


def detect_script(text: str) -> str | None:
    """ISO 15924 code of the Unicode script most of the text's letters are in, ``None`` if none.

    ``detect_script("Hello")`` -> ``'Latn'``; Chinese text -> ``'Hani'``; Urdu -> ``'Arab'``.
    """
    counts = script_counts(text)
    if not counts:
        return None
    return max(sorted(counts), key=lambda code: counts[code])


def script_name(code: str | None) -> str | None:
    """Unicode's name of an ISO 15924 script code (``Hani`` -> ``Han``); the code if unnamed."""
    if code is None:
        return None
    from fontTools import unicodedata as uni

    try:
        return uni.script_name(code)
    except KeyError:
        return code


def script_direction(code: str | None) -> str:
    """``rtl`` for right-to-left scripts (Arabic, Hebrew, Thaana ...), else ``ltr``."""
    if code is None:
        return "ltr"
    from fontTools import unicodedata as uni

    try:
        return uni.script_horizontal_direction(code, "LTR").lower()
    except KeyError:
        return "ltr"


# ---------------------------------------------------------------------------------------------
# The one entry point


def language_info(
    code: str,
    *,
    bcp47: str | None = None,
    name: str | None = None,
    direction: str | None = None,
    text: str | None = None,
    strict: bool = True,
) -> LanguageInfo:
    """Metadata for a language given by ISO 639-1/2/3 code or BCP 47 tag.

    Args:
        code: ``en``, ``eng``, ``zh-Hant``, ``cmn`` ...; the primary subtag must be an ISO 639 code.
        bcp47: the source's BCP 47 tag when it has one (default: ``code`` if it has a script
            subtag, else the shortest ISO code).
        name: the source's name for the language (default: ISO 639-3's name).
        direction: the source's writing direction (default: from the script).
        text: sample text to detect the script from (the script subtag is used without it).
        strict: raise for a code that is no ISO 639 code; with ``False`` such a code is kept as
            it is, with no genealogy (for sources whose metadata carries codes ISO has retired).

    Raises:
        BabelmoeError: for a code that is no ISO 639 code, when ``strict``.
    """
    try:
        code3, iso_name = resolve_code(code)
    except BabelmoeError:
        if strict:
            raise
        logger.warning("language code %r is not in ISO 639; no genealogy for it", code)
        code3, iso_name = split_bcp47(code)[0] or code, code
    _, subtag_script = split_bcp47(bcp47 or code)
    shares = script_shares(text) if text else {}
    script_code = next(iter(shares), None)  # the majority script (ties: alphabetical code)
    if script_code is None and subtag_script is not None:
        script_code = subtag_script
        shares = {subtag_script: 1.0}
    if bcp47 is None:
        bcp47 = code if subtag_script else bcp47_for(code3)
    gen = genealogy(code3)
    return LanguageInfo(
        code=code3,
        bcp47=bcp47,
        name=name or iso_name,
        family=gen.family,
        genus=gen.genus,
        script=script_name(script_code),
        classification=list(gen.classification),
        direction=direction or script_direction(script_code),
        glottocode=gen.glottocode,
        script_code=script_code,
        scripts=shares,
    )
