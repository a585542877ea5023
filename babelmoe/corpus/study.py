"""The 50+ language study of family against script: its rule, and its language list, frozen.

The question: does the activation distance between languages follow genealogy (Glottolog) or
script (the Unicode scripts of their letters)? With nine languages the two are nearly
confounded; this study picks UDHR versions so that they come apart. :func:`select_study` applies
the rule below to a UDHR catalogue (:mod:`babelmoe.corpus.catalogue`, token counts under the
default model's tokenizer); its output is frozen in :data:`STUDY50_LANGUAGES`, so that the study
is reproducible even when the corpus package or the metadata change (a test checks that the rule
still gives the frozen list on the installed corpus).

The rule, step by step:

1. **Eligible** versions: encoding stage >= 4; the whole declaration (>= 30 documents); a
   Glottolog family (no pseudo-family, no unidentified ``und``); at least ``min_tokens`` tokens
   in the profiled documents, so that every language is profiled on the same number of tokens
   (the study's budget); at least one character per token on average (below that the tokenizer
   falls back to bytes for the script, and the model reads byte sequences, not words: Cherokee,
   Vai, Chakma, Nuosu, Tai Dam, Tai Tham, Tifinagh are out for this reason); and the version a
   bare language code picks (:func:`babelmoe.corpus.udhr.resolve_udhr`), except the contrasts.
2. **Contrasts**, chosen on purpose (:data:`STUDY50_CONTRASTS`, each with its reason): the
   paper's nine; one language in two scripts (Hindi/Urdu: one spoken language, Devanagari and
   Arabic; Serbian: one text in Cyrillic and in Latin); related languages in different scripts
   (Slavic in Cyrillic and Latin; Indo-Iranian in four scripts; Turkic in Latin, Cyrillic and
   Arabic; Semitic in Arabic, Hebrew, Ethiopic and Latin; the four Dravidian scripts); unrelated
   languages sharing a script (Latin: Turkish, Finnish, Vietnamese, Indonesian, Swahili; Arabic:
   Persian, Uyghur; Cyrillic: Kazakh, Mongolian; Han: Japanese beside Chinese).
3. **Scripts**: for every majority script of the eligible versions that the study lacks, the
   eligible version written in it with the most characters per token (the one the tokenizer,
   and so presumably the model's training data, covers best).
4. **Families**: for every family with at least ``min_family_versions`` eligible versions that
   the study lacks, its eligible version with the most characters per token.

Steps 3 and 4 walk scripts and families by decreasing number of eligible versions, then by name.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from babelmoe.corpus.catalogue import CatalogueEntry

logger = logging.getLogger(__name__)

# (UDHR code, why it is in the study): step 2 of the rule.
STUDY50_CONTRASTS: tuple[tuple[str, str], ...] = (
    ("eng", "paper"),
    ("fra", "paper"),
    ("spa", "paper"),
    ("por_BR", "paper"),
    ("cmn_hans", "paper; Han, with Japanese"),
    ("arb", "paper; Semitic in Arabic script"),
    ("hin", "paper; Hindi/Urdu: one spoken language, two scripts"),
    ("ben", "paper"),
    ("urd", "paper; Hindi/Urdu: one spoken language, two scripts"),
    ("srp_cyrl", "one language, one text, two scripts (Cyrillic)"),
    ("srp_latn", "one language, one text, two scripts (Latin)"),
    ("rus", "Slavic in Cyrillic"),
    ("ukr", "Slavic in Cyrillic"),
    ("pol", "Slavic in Latin"),
    ("ces", "Slavic in Latin"),
    ("hrv", "Slavic in Latin; Serbian's closest standard"),
    ("pes_1", "Indo-Iranian in Arabic script, with Urdu"),
    ("mar", "Indo-Aryan in Devanagari, with Hindi"),
    ("nep", "Indo-Aryan in Devanagari, with Hindi"),
    ("pan", "Indo-Aryan in Gurmukhi"),
    ("guj", "Indo-Aryan in Gujarati"),
    ("deu_1996", "Germanic in Latin, current orthography"),
    ("nld", "Germanic in Latin"),
    ("ita", "Romance in Latin"),
    ("ron_2006", "Romance in Latin, current orthography"),
    ("tur", "Turkic in Latin; unrelated to Indo-European, same script"),
    ("kaz", "Turkic in Cyrillic; unrelated to Slavic, same script"),
    ("uig_arab", "Turkic in Arabic script"),
    ("uzn_latn", "Turkic in Latin"),
    ("heb", "Semitic in Hebrew script"),
    ("amh", "Semitic in Ethiopic script"),
    ("mlt", "Semitic in Latin script"),
    ("tam", "Dravidian, Tamil script"),
    ("tel", "Dravidian, Telugu script"),
    ("kan", "Dravidian, Kannada script"),
    ("mal", "Dravidian, Malayalam script"),
    ("fin", "Uralic in Latin"),
    ("hun", "Uralic in Latin"),
    ("est", "Uralic in Latin"),
    ("vie", "Austroasiatic in Latin"),
    ("ind", "Austronesian in Latin"),
    ("swh", "Atlantic-Congo in Latin"),
    ("khk", "Mongolic in Cyrillic"),
    ("jpn", "Japanese: Han and kana, beside Chinese"),
    ("kor", "Koreanic, Hangul"),
)


@dataclass(frozen=True)
class StudyRule:
    """Thresholds of the rule (module docstring)."""

    min_tokens: int = 1500
    """Profiled tokens a version must have (the study's token budget)."""
    min_chars_per_token: float = 1.0
    """Characters per token below which the tokenizer reads the script as bytes."""
    min_family_versions: int = 3
    """A family gets a representative (step 4) when it has at least this many eligible versions."""
    min_stage: int = 4
    """UDHR encoding stage."""
    min_documents: int = 30
    """Documents of a whole declaration (preamble and 30 articles; 30 without preamble)."""


def eligible(entry: CatalogueEntry, rule: StudyRule) -> bool:
    """Step 1 of the rule, without the default-version condition."""
    return (
        (entry.stage or 0) >= rule.min_stage
        and entry.documents >= rule.min_documents
        and entry.family is not None
        and entry.code != "und"
        and (entry.profile_tokens or 0) >= rule.min_tokens
        and (entry.chars_per_token or 0.0) >= rule.min_chars_per_token
    )


def select_study(
    catalogue: Sequence[CatalogueEntry],
    contrasts: Sequence[tuple[str, str]] = STUDY50_CONTRASTS,
    rule: StudyRule | None = None,
) -> list[tuple[str, str]]:
    """(UDHR code, reason) of every language of the study, in the order the rule adds them.

    Contrasts that are missing from the catalogue or not eligible are left out with a warning.
    """
    rule = rule or StudyRule()
    by_request = {e.request: e for e in catalogue}
    pool = [e for e in catalogue if e.is_default and eligible(e, rule)]
    chosen: dict[str, str] = {}
    for request, reason in contrasts:
        entry = by_request.get(request)
        if entry is None or not eligible(entry, rule):
            logger.warning("study contrast %s left out: missing or not eligible", request)
            continue
        chosen[request] = reason

    def best(candidates: list[CatalogueEntry]) -> CatalogueEntry:
        return max(candidates, key=lambda e: (e.chars_per_token or 0.0, e.request))

    def walk(key, min_versions: int, what: str) -> None:
        counts = Counter(key(e) for e in pool)
        for value in sorted(counts, key=lambda v: (-counts[v], v)):
            if counts[value] < min_versions:
                continue
            if any(key(by_request[r]) == value for r in chosen):
                continue
            pick = best([e for e in pool if key(e) == value])
            chosen[pick.request] = f"{what} {value}: best-covered eligible version"

    walk(lambda e: e.script_code, 1, "script")
    walk(lambda e: e.family, rule.min_family_versions, "family")
    return list(chosen.items())


# Generated by select_study() on udhr@6 with the default model's tokenizer and StudyRule()
# (see the module docstring); frozen here so the study does not move when its inputs do.
# 69 versions, 27 Glottolog families, 27 majority scripts.
STUDY50_LANGUAGES: tuple[str, ...] = (
    "eng",
    "fra",
    "spa",
    "por_BR",
    "cmn_hans",
    "arb",
    "hin",
    "ben",
    "urd",
    "srp_cyrl",
    "srp_latn",
    "rus",
    "ukr",
    "pol",
    "ces",
    "hrv",
    "pes_1",
    "mar",
    "nep",
    "pan",
    "guj",
    "deu_1996",
    "nld",
    "ita",
    "ron_2006",
    "tur",
    "kaz",
    "uig_arab",
    "uzn_latn",
    "heb",
    "amh",
    "mlt",
    "tam",
    "tel",
    "kan",
    "mal",
    "fin",
    "hun",
    "est",
    "vie",
    "ind",
    "swh",
    "khk",
    "jpn",
    "kor",
    "mya",
    "dzo",
    "hye",
    "kat",
    "ell_monotonic",
    "khm",
    "lao",
    "sin",
    "aii",
    "div",
    "tha",
    "quy",
    "tzc",
    "not",
    "zam",
    "snk",
    "amc",
    "045",
    "orh",
    "gug",
    "abk",
    "kwi",
    "acu",
    "hea",
)
STUDY50_BUDGET = StudyRule().min_tokens


# ----------------------------------------------------------------------------------------------
# The replication sample (S2): a second, disjoint sample chosen by a rule fixed before profiling.
# ----------------------------------------------------------------------------------------------

REPLICATION_SIZE = 50
"""Versions in the replication sample."""
REPLICATION_PER_SCRIPT = 4
"""At most this many versions per non-Latin script in step R1."""


def select_replication(
    catalogue: Sequence[CatalogueEntry],
    first: Sequence[str] = STUDY50_LANGUAGES,
    size: int = REPLICATION_SIZE,
    per_script: int = REPLICATION_PER_SCRIPT,
    rule: StudyRule | None = None,
) -> list[tuple[str, str]]:
    """(UDHR code, reason) of the replication sample, in the order the rule adds them.

    The rule (written 2026-12-07, before any of these versions was profiled):

    0. **Pool**: the versions eligible under step 1 of the study's rule (``eligible``, the
       default version of its language) whose ISO 639-3 language is not in ``first``: disjoint
       by language, not only by version (no second orthography of a first-sample language).
    1. **Scripts**: for every non-Latin majority script of the pool, up to ``per_script``
       versions, one family at a time (the best-covered version of each family first, families
       by decreasing pool size then name), so that one script spans families where it can.
    2. **Families**: for every family with at least ``rule.min_family_versions`` pool versions
       not yet represented, its best-covered version.
    3. **Fill** to ``size``: rounds over the families by decreasing pool size (then name), each
       round adding every family's best-covered version not yet chosen.

    "Best-covered" = most characters per token (as in the study's steps 3-4), ties by code.
    Unlike the first sample there are no hand-picked contrasts: every step is mechanical.
    """
    rule = rule or StudyRule()
    by_request = {e.request: e for e in catalogue}
    first_codes = {by_request[r].code for r in first if r in by_request}
    pool = [
        e for e in catalogue if e.is_default and eligible(e, rule) and e.code not in first_codes
    ]
    pool.sort(key=lambda e: (-(e.chars_per_token or 0.0), e.request))  # best-covered first
    family_size = Counter(e.family for e in pool)
    families = sorted(family_size, key=lambda f: (-family_size[f], f))
    chosen: dict[str, str] = {}

    def take(entry: CatalogueEntry, reason: str) -> None:
        if len(chosen) < size and entry.request not in chosen:
            chosen[entry.request] = reason

    script_size = Counter(e.script_code for e in pool)
    for script in sorted(script_size, key=lambda s: (-script_size[s], s)):
        if script == "Latn":
            continue
        in_script = [e for e in pool if e.script_code == script]
        picked: list[CatalogueEntry] = []
        while len(picked) < min(per_script, len(in_script)):
            for family in families:
                rest = [e for e in in_script if e.family == family and e not in picked]
                if rest and len(picked) < per_script:
                    picked.append(rest[0])
        for entry in picked:
            take(entry, f"script {script}")
    for family in families:
        if family_size[family] < rule.min_family_versions:
            continue
        if any(by_request[r].family == family for r in chosen):
            continue
        take(next(e for e in pool if e.family == family), f"family {family}")
    while len(chosen) < min(size, len(pool)):
        for family in families:
            rest = [e for e in pool if e.family == family and e.request not in chosen]
            if rest:
                take(rest[0], f"fill: family {family}")
    return list(chosen.items())


# Generated by select_replication() on udhr@6 with the default model's tokenizer, StudyRule() and
# the first sample STUDY50_LANGUAGES, before profiling any of them (2026-12-07); frozen as above.
# 50 versions, 20 Glottolog families, 9 majority scripts, no ISO 639-3 language of the first.
REPLICATION_LANGUAGES: tuple[str, ...] = (
    "bul", "kir", "yrk", "gld", "cjy", "hsn", "gan", "nan", "pes_2", "pnb",
    "skr", "pbu", "mag", "bho", "mai", "san", "mnw", "shn", "tir", "ydd",
    "bod", "lin", "046", "qud", "tzh", "cni", "mzi", "sus", "tna", "oki",
    "gyr", "loz", "pap", "mly_latn", "flm", "gag", "qxn", "053", "fkv", "hus",
    "cot", "ote", "emk", "mcd", "lot", "eve", "gnw", "kbd", "kha", "cbi",
)  # fmt: skip

REPLICATION_RULE = (
    "the replication sample: select_replication() in babelmoe/corpus/study.py, written "
    "2026-12-07 before any of its versions was profiled: R0 pool = UDHR versions eligible "
    "under the study's step 1 whose ISO 639-3 language is not in the first sample; R1 up to "
    f"{REPLICATION_PER_SCRIPT} versions per non-Latin script, one family at a time; R2 one "
    "version per family with >= 3 pool versions; R3 fill to "
    f"{REPLICATION_SIZE} by rounds over the families (best-covered version first)"
)


def iso_codes(requests: Sequence[str], source: str = "udhr") -> dict[str, str]:
    """ISO 639-3 code of every language request (a UDHR version, or a folder's language code).

    For UDHR the request is resolved to its version the way the corpus loader does; otherwise
    the code is read as an ISO 639-1/2/3 code (left as is when it is none)."""
    from babelmoe.corpus.languages import iso_language

    out: dict[str, str] = {}
    if source == "udhr":
        from babelmoe.corpus.udhr import list_udhr, resolve_udhr

        versions = list_udhr()
        for request in requests:
            out[request] = resolve_udhr(request, versions).iso6393
        return out
    for request in requests:
        lang = iso_language(request.split("_")[0].split("-")[0])
        out[request] = lang.pt3 if lang is not None and lang.pt3 else request
    return out


def overlap(
    first: Sequence[str], second: Sequence[str], source: str = "udhr"
) -> list[tuple[str, str]]:
    """(second-sample request, ISO 639-3) of every second-sample language the first has too."""
    codes = iso_codes([*first, *second], source)
    first_iso = {codes[r] for r in first}
    return [(r, codes[r]) for r in second if codes[r] in first_iso]
