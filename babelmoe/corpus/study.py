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
