"""Covariates of a language sample: what else, besides genealogy and script, could make two
languages' activations alike, measured by the tool for any set of languages.

Per language (``features``, NaN where not measured):

* ``tokens_per_byte``: tokenizer fertility, tokens (BOS excluded) per UTF-8 byte of the parallel
  text: the profiled documents whose ids every language has (the same UDHR articles in every
  language), so that the numbers differ only by language, not by content;
* ``bits_per_byte``: how well the model knows the language, its negative log-likelihood in bits
  per UTF-8 byte of held-out documents (:mod:`babelmoe.evaluate.perplexity`).

Between languages (``distances``, each [n, n] float64, symmetric, zero diagonal, finite):

* ``script`` (default): the earth mover's distance between the two languages' script
  distributions (shares of their letters per Unicode script), with the script-descent distance
  below as ground distance: a Japanese text (47% Han) is partly Han, and Latin is nearer to
  Cyrillic (both from Greek) than to Tibetan (from Brahmi). With a 0/1 ground distance it is
  ``script_letters``.
* ``script_letters``: the total variation distance of the script distributions,
  :func:`babelmoe.corpus.languages.script_overlap_distance` (the ``family_vs_script`` measure up
  to this version).
* ``script_binary``: 0 when the majority scripts agree, 1 otherwise (``analysis/summary.json``'s
  measure up to this version).
* ``genealogy`` (default): a Glottolog path measure normalised within each family (see
  :func:`graded_genealogical_distance`): 1 across families; within a family, 0.5 times the share
  of the deeper lineage below the two languages' split. A split at the root of any family gives
  0.5 and sisters nearly 0, whether Glottolog gives the family 4 levels or 19.
* ``genealogy_lineage``: :func:`babelmoe.analysis.genealogy.genealogical_distance`, 1 - shared
  lineage depth / the deepest lineage among the sample (deep families spread over the whole range
  and shallow ones sit near 1).
* ``geography``: great-circle distance (1000 km) between the languages' coordinates.
* ``fertility``: on a parallel corpus ``|log tokens_i - log tokens_j|`` over the same documents
  in every language: how many tokens the tokenizer needs for the same content (1,203 for
  Mandarin to 7,526 for Dhivehi on the study's 23 common profiled UDHR articles with the default
  model). Otherwise ``|log tokens_per_byte_i - log tokens_per_byte_j|``;
  on the 69-language study the two orders of pairs are unrelated (Spearman -0.002), because
  tokens per byte mostly follows how many UTF-8 bytes a script's letters take (1 for Latin, 3
  for Indic scripts), so it is the fallback, not the default.
* ``familiarity``: on a parallel corpus ``|log bits_i - log bits_j|``, the model's negative
  log-likelihood of the same held-out documents in every language (bits for the same content:
  on the 69-language study 262 bits for English to 2,167 for Achuar-Shiwiar over 3 articles;
  lowest English, French, Russian, Spanish, Portuguese). Otherwise
  ``|bits_per_byte_i - bits_per_byte_j|``: bits per byte follows UTF-8 widths as tokens per
  byte does (Spearman 0.91 between the two on the study, where Tamil is among the three lowest
  in bits per byte).
* ``token_overlap``: 1 - sum over token ids of min(p_i(t), p_j(t)), the total variation distance
  of the two languages' input token-id distributions on the profiled documents: what the model
  actually reads.

A distance whose inputs are missing for some language is left out of ``distances`` (never filled
with a guess) and ``notes`` says why.

Why these defaults. Genealogy: URIEL's genetic distance (``urielplus``) is the angular distance of
family-membership vectors; it crowds every pair into 0.88-1.0 and took 13 s for 14 languages here
(minutes for 69); the per-family normalised Glottolog path measure uses the same Glottolog tree
(as bundled by ``urielplus``), is fast, and gives every family the same range. Normalising by
the family's deepest lineage in Glottolog instead (the ``family_depths`` option) leaves sisters
in shallow branches of deep families far apart (Hindi-Urdu 0.19 against 0.05). Script: the
0/1 and overlap measures call Latin-Cyrillic as far apart as Latin-Tibetan; the descent tree
knows they are not, and the letter distributions keep mixed-script texts partial.

Script descent. :data:`SCRIPT_PARENT` maps ISO 15924 codes (and a few ancestors without a
code: ``Proto-Sinaitic``, ``Gupta``, ``Pallava``, ``Kadamba``) to the script they descend from,
after P. T. Daniels and W. Bright (eds.), *The World's Writing Systems* (Oxford UP, 1996), parts
on the West Semitic, Greek and Brahmi families, and R. Salomon, *Indian Epigraphy* (Oxford UP,
1998) for the Brahmi tree; Unicode's script names and codes come from its Scripts.txt. The
Aramaic origin of Brahmi is the majority view, not a certainty. Scripts invented without a model
(Hangul, Cherokee, Canadian syllabics, Vai, N'Ko, Adlam, Ol Chiki, Yi ...) and scripts absent
from the table are roots of their own. The ground distance of two scripts a, b with lineages
(root first, the script last) of lengths d_a, d_b sharing c leading nodes is
``1 - 2 c / (d_a + d_b)``: 0 for the same script, 1 without a common ancestor, Latin-Cyrillic
0.25, Latin-Tibetan 0.6, Hiragana-Han 0.33.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from babelmoe import artifacts
from babelmoe.analysis.genealogy import category_distance, genealogical_distance
from babelmoe.corpus.languages import script_distribution, script_overlap_distance

logger = logging.getLogger(__name__)

KIND = "covariates"
FEATURES = ("tokens_per_byte", "bits_per_byte")
DEFAULT_SCRIPT = "script"
DEFAULT_GENEALOGY = "genealogy"
DISTANCES = (
    "script",
    "script_letters",
    "script_binary",
    "genealogy",
    "genealogy_lineage",
    "geography",
    "fertility",
    "familiarity",
    "token_overlap",
)
EARTH_RADIUS_KM = 6371.0088  # the mean Earth radius (IUGG)

SOURCES = {
    "script": "earth mover's distance of the letters' Unicode script shares, ground distance "
    "from a script-descent tree (Daniels & Bright 1996; Salomon 1998): 1 - 2 shared / (depth a "
    "+ depth b)",
    "script_letters": "1 - overlap of the letters' Unicode script shares (total variation; "
    "Unicode Scripts.txt via fontTools)",
    "script_binary": "0 same majority Unicode script of the letters, 1 otherwise",
    "genealogy": "Glottolog lineage (as bundled by urielplus): 1 across families, else 0.5 x "
    "(D - shared nodes) / (D - 1), D the deeper of the two lineages (language included)",
    "genealogy_lineage": "Glottolog lineage (urielplus): 1 - shared depth / deepest lineage in "
    "the sample",
    "geography": "great-circle distance in 1000 km between Glottolog coordinates (urielplus "
    "lang_fam_geo.csv), UDHR package coordinates where Glottolog has none",
    "fertility": "|log tokens/byte_i - log tokens/byte_j|, the model's tokenizer on the profiled "
    "documents (no document in every language: not a parallel corpus)",
    "familiarity": "|bits/byte_i - bits/byte_j|, the model's negative log-likelihood on held-out "
    "documents",
    "token_overlap": "1 - sum_t min(p_i(t), p_j(t)) of the input token-id distributions on the "
    "profiled documents",
}
FERTILITY_PARALLEL = (
    "|log tokens_i - log tokens_j|, the model's tokenizer on the same profiled documents in every "
    "language (tokens for the same content; the parallel corpus's fertility)"
)
FAMILIARITY_PARALLEL = (
    "|log bits_i - log bits_j|, the model's negative log-likelihood (BOS prepended) of the same "
    "held-out documents in every language (bits for the same content)"
)
FEATURE_SOURCES = {
    "tokens_per_byte": "tokens (BOS excluded) per UTF-8 byte, the model's tokenizer, profiled "
    "documents common to every language",
    "bits_per_byte": "negative log-likelihood in bits per UTF-8 byte of held-out documents (BOS "
    "prepended), the model",
}

# ---------------------------------------------------------------------------------------------
# Script descent (see the module docstring for the sources)

SCRIPT_PARENT: dict[str, str] = {
    # West Semitic and its descendants (Daniels & Bright, parts on Semitic and Greek scripts)
    "Phnx": "Proto-Sinaitic",
    "Sarb": "Proto-Sinaitic",  # Old South Arabian
    "Ethi": "Sarb",  # Ge'ez
    "Grek": "Phnx",
    "Latn": "Grek",  # through Old Italic
    "Ital": "Grek",
    "Runr": "Ital",
    "Cyrl": "Grek",  # from the Greek uncial
    "Glag": "Grek",
    "Copt": "Grek",
    "Goth": "Grek",
    "Armn": "Grek",  # modelled on Greek
    "Geor": "Grek",  # modelled on Greek
    "Lisu": "Latn",  # Fraser alphabet, from Latin capitals
    "Tfng": "Phnx",  # Libyco-Berber from Punic
    "Armi": "Phnx",  # Imperial Aramaic
    "Hebr": "Armi",  # square Hebrew
    "Syrc": "Armi",
    "Nbat": "Armi",
    "Arab": "Nbat",
    "Thaa": "Arab",  # first letters from Arabic numerals
    "Sogd": "Armi",
    "Ougr": "Sogd",  # Old Uyghur
    "Mong": "Ougr",
    "Khar": "Armi",
    "Brah": "Armi",  # the Semitic hypothesis (Salomon 1998, ch. 2)
    # Brahmi (Salomon 1998): northern branch through Gupta
    "Gupta": "Brah",
    "Sidd": "Gupta",
    "Deva": "Sidd",  # Nagari
    "Gujr": "Deva",
    "Beng": "Sidd",  # Eastern Nagari (Bengali-Assamese)
    "Orya": "Sidd",
    "Newa": "Sidd",
    "Shrd": "Gupta",
    "Guru": "Shrd",  # through Landa
    "Tibt": "Gupta",
    # southern branch: Kadamba and Pallava
    "Kadamba": "Brah",
    "Knda": "Kadamba",
    "Telu": "Kadamba",
    "Pallava": "Brah",
    "Gran": "Pallava",
    "Taml": "Pallava",
    "Mlym": "Gran",
    "Sinh": "Gran",
    "Khmr": "Pallava",
    "Thai": "Khmr",
    "Laoo": "Khmr",
    "Mymr": "Pallava",  # through Mon
    "Tale": "Mymr",
    "Lana": "Mymr",
    "Cakm": "Mymr",
    "Kawi": "Pallava",
    "Java": "Kawi",
    "Bali": "Kawi",
    "Sund": "Kawi",
    "Bugi": "Kawi",
    "Batk": "Kawi",
    "Tglg": "Kawi",
    # Han and the scripts drawn from it
    "Hira": "Hani",  # from man'yogana
    "Kana": "Hani",
    "Bopo": "Hani",
}
# Language-level script subtags that are not Unicode Script values.
SCRIPT_ALIASES = {"Hans": "Hani", "Hant": "Hani", "Jpan": "Hani", "Kore": "Hang"}


def _script_code(script: str) -> str:
    """An ISO 15924 code for a code or a Unicode script name (``Latin`` -> ``Latn``)."""
    script = SCRIPT_ALIASES.get(script, script)
    if len(script) == 4 and script[0].isupper():
        return script
    from fontTools import unicodedata as uni

    try:
        return SCRIPT_ALIASES.get(uni.script_code(script), uni.script_code(script))
    except KeyError:
        return script


def script_lineage(script: str) -> list[str]:
    """The script's ancestors, root first, then the script: ``Latn`` -> ``['Proto-Sinaitic',
    'Phnx', 'Grek', 'Latn']``; a script outside :data:`SCRIPT_PARENT` is its own root."""
    path = [_script_code(script)]
    while path[-1] in SCRIPT_PARENT and len(path) < 64:
        path.append(SCRIPT_PARENT[path[-1]])
    return path[::-1]


def script_tree_distance(a: str, b: str) -> float:
    """Ground distance of two scripts: ``1 - 2 c / (d_a + d_b)`` (module docstring)."""
    pa, pb = script_lineage(a), script_lineage(b)
    shared = 0
    for x, y in zip(pa, pb, strict=False):
        if x != y:
            break
        shared += 1
    return 1.0 - 2.0 * shared / (len(pa) + len(pb))


def earth_movers_distance(
    p: Mapping[str, float], q: Mapping[str, float], ground: Any = script_tree_distance
) -> float:
    """Earth mover's distance between two distributions over labels with ``ground(a, b)`` as
    the cost of moving mass from a to b. 1.0 when either is empty (unknown), as
    :func:`script_overlap_distance` does."""
    if not p or not q:
        return 1.0
    ps = {k: v / sum(p.values()) for k, v in p.items() if v > 0}
    qs = {k: v / sum(q.values()) for k, v in q.items() if v > 0}
    # Mass both share stays in place at no cost; only the rest moves.
    common = {k: min(ps[k], qs.get(k, 0.0)) for k in ps}
    src = {k: v - common.get(k, 0.0) for k, v in ps.items() if v - common.get(k, 0.0) > 1e-12}
    dst = {k: v - common.get(k, 0.0) for k, v in qs.items() if v - common.get(k, 0.0) > 1e-12}
    if not src or not dst:
        return 0.0
    a, b = list(src), list(dst)
    cost = np.array([[ground(x, y) for y in b] for x in a], dtype=np.float64)
    if len(a) == 1:  # one source: every sink is filled from it
        return float(min(1.0, sum(dst[y] * cost[0, j] for j, y in enumerate(b))))
    if len(b) == 1:  # one sink: every source empties into it
        return float(min(1.0, sum(src[x] * cost[i, 0] for i, x in enumerate(a))))
    from scipy.optimize import linprog

    na, nb = len(a), len(b)
    eq = np.zeros((na + nb, na * nb))
    for i in range(na):
        eq[i, i * nb : (i + 1) * nb] = 1.0
    for j in range(nb):
        eq[na + j, j::nb] = 1.0
    rhs = np.array([src[x] for x in a] + [dst[y] for y in b])
    rhs[na:] *= rhs[:na].sum() / rhs[na:].sum()  # equal totals despite rounding
    solution = linprog(cost.ravel(), A_eq=eq, b_eq=rhs, bounds=(0, None), method="highs")
    return float(min(1.0, solution.fun))


def script_distances(languages: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """``script`` (graded), ``script_letters`` and ``script_binary`` [n, n] from metadata."""
    shares = [script_distribution(dict(lang)) for lang in languages]
    n = len(shares)
    graded, letters = np.zeros((n, n)), np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            graded[i, j] = graded[j, i] = earth_movers_distance(shares[i], shares[j])
            letters[i, j] = letters[j, i] = script_overlap_distance(shares[i], shares[j])
    binary = category_distance([_with_code(lang) for lang in languages], "script")
    return {"script": graded, "script_letters": letters, "script_binary": binary}


def _with_code(language: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(language)
    out.setdefault("code", str(language.get("bcp47") or language.get("name") or "?"))
    return out


# ---------------------------------------------------------------------------------------------
# Genealogy


def _lineage_with_leaf(language: Mapping[str, Any]) -> list[str]:
    path = [str(x) for x in (language.get("classification") or []) if x]
    if not path and language.get("family"):  # an isolate: its own family
        path = [str(language["family"])]
    return [*path, f"<{language.get('code')}>"]


def graded_genealogical_distance(
    languages: Sequence[Mapping[str, Any]], family_depths: Mapping[str, int] | None = None
) -> np.ndarray:
    """[n, n] Glottolog path measure, normalised within each family.

    A language's path is its lineage (family root first) followed by the language itself. Two
    languages of one family sharing s >= 1 leading nodes (the root included) are at
    ``d = 0.5 * (D - s) / (D - 1)``; languages of different families, or of no known family,
    at 1; two entries of the same language code (one language in two scripts) at 0.

    D is, by default, the length of the deeper of the two paths: a split at any family's root
    gives 0.5 and sisters give 0.5 / (D - 1), however many levels Glottolog gives the family or
    the branch (Hindi-Urdu 0.05, though Indo-European has 19-level branches elsewhere). With
    ``family_depths`` (family -> depth, e.g. the longest path over all of Glottolog:
    :func:`babelmoe.corpus.languages.glottolog_family_depths`), D is the family's depth
    instead (never less than the two paths): one scale per family, under which sisters in a
    shallow branch of a deep family stay far apart (Hindi-Urdu 0.19).
    """
    paths = [_lineage_with_leaf(lang) for lang in languages]
    families = [
        str(lang.get("family")) if lang.get("family") and len(p) > 1 else None
        for lang, p in zip(languages, paths, strict=True)
    ]
    n = len(paths)
    out = np.ones((n, n))
    np.fill_diagonal(out, 0.0)
    for i in range(n):
        for j in range(i + 1, n):
            if languages[i].get("code") == languages[j].get("code"):
                value = 0.0
            elif families[i] is None or families[i] != families[j] or paths[i][0] != paths[j][0]:
                value = 1.0
            else:
                shared = 0
                for x, y in zip(paths[i], paths[j], strict=False):
                    if x != y:
                        break
                    shared += 1
                depth = max(len(paths[i]), len(paths[j]))
                if family_depths is not None:
                    depth = max(depth, int(family_depths.get(families[i], 0)))
                value = 0.5 * (depth - shared) / (depth - 1) if depth > 1 else 0.0
            out[i, j] = out[j, i] = value
    return out


# ---------------------------------------------------------------------------------------------
# The references the analyses test (one measure each, named)

SCRIPT_MEASURES = ("script", "script_letters", "script_binary")
GENEALOGY_MEASURES = ("genealogy", "genealogy_lineage")


def reference_distances(
    languages: Sequence[Mapping[str, Any]],
    script_measure: str = DEFAULT_SCRIPT,
    genealogy_measure: str = DEFAULT_GENEALOGY,
) -> dict[str, np.ndarray]:
    """``{"script": [n, n], "genealogy": [n, n]}`` in the named measures (metadata only): the
    one place the analyses take their script and genealogical references from."""
    if script_measure not in SCRIPT_MEASURES or genealogy_measure not in GENEALOGY_MEASURES:
        raise ValueError(f"unknown measure {script_measure!r} or {genealogy_measure!r}")
    langs = [_with_code(lang) for lang in languages]
    if genealogy_measure == "genealogy":
        genealogy = graded_genealogical_distance(langs)
    else:
        genealogy = genealogical_distance(langs)
    return {"script": script_distances(langs)[script_measure], "genealogy": genealogy}


def measures_block(script_measure: str, genealogy_measure: str) -> dict[str, dict[str, str]]:
    """What a summary says about its references: the measure's name and source, each."""
    return {
        "script": {"measure": script_measure, "source": SOURCES[script_measure]},
        "genealogy": {"measure": genealogy_measure, "source": SOURCES[genealogy_measure]},
    }


# ---------------------------------------------------------------------------------------------
# Measured covariates


def great_circle_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine distance in km between two (latitude, longitude) points in degrees."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@dataclass
class TokenCounts:
    """One language's input token-id distribution: sorted unique ids and their counts."""

    ids: np.ndarray  # [k] int64, sorted, unique
    counts: np.ndarray  # [k] float64

    @classmethod
    def from_ids(cls, ids: Sequence[int] | np.ndarray) -> TokenCounts:
        unique, counts = np.unique(np.asarray(ids, dtype=np.int64), return_counts=True)
        return cls(unique, counts.astype(np.float64))


def token_overlap_distance(a: TokenCounts, b: TokenCounts) -> float:
    """1 - sum_t min(p_a(t), p_b(t)); 1.0 when either has no token."""
    total_a, total_b = a.counts.sum(), b.counts.sum()
    if total_a <= 0 or total_b <= 0:
        return 1.0
    _, ia, ib = np.intersect1d(a.ids, b.ids, assume_unique=True, return_indices=True)
    overlap = np.minimum(a.counts[ia] / total_a, b.counts[ib] / total_b).sum()
    return float(min(1.0, max(0.0, 1.0 - overlap)))


@dataclass
class Covariates:
    """Per-language covariates and pairwise reference distances of one language sample.

    Attributes:
        languages: the profile's language labels, in profile order.
        features: name -> [n] float64 per language (NaN = not measured); at least
            ``tokens_per_byte`` and ``bits_per_byte``.
        distances: name -> [n, n] float64, symmetric, zero diagonal, finite (names in
            :data:`DISTANCES`; one whose inputs are missing is absent, see ``notes``).
        sources: name (feature or distance) -> one line: what it is and where it comes from.
        categories: name -> [n] labels per language (``family``, ``genus``, ``script``) for
            tables; empty strings where unknown.
        notes: what was left out or replaced, and why.
    """

    languages: list[str]
    features: dict[str, np.ndarray]
    distances: dict[str, np.ndarray]
    sources: dict[str, str]
    categories: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _pairwise(values: np.ndarray, fn: Any) -> np.ndarray:
    n = len(values)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = fn(values[i], values[j])
    return out


def _check_distance(name: str, matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    matrix = 0.5 * (matrix + matrix.T)
    np.fill_diagonal(matrix, 0.0)
    if not np.isfinite(matrix).all():
        raise ValueError(f"distance {name} is not finite")
    return matrix


def compute_covariates(
    languages: Sequence[Mapping[str, Any]],
    labels: Sequence[str] | None = None,
    *,
    tokens_per_byte: Sequence[float] | None = None,
    parallel_tokens: Sequence[float] | None = None,
    bits_per_byte: Sequence[float] | None = None,
    parallel_bits: Sequence[float] | None = None,
    token_counts: Sequence[TokenCounts | None] | None = None,
    coordinates: Sequence[tuple[float, float] | None] | None = None,
    family_depths: Mapping[str, int] | None = None,
    extra_features: Mapping[str, Sequence[float]] | None = None,
    notes: Sequence[str] = (),
) -> Covariates:
    """Covariates of ``languages`` (profile metadata dicts, in profile order). Pure.

    Args:
        languages: one metadata dict per language (``code``, ``family``, ``classification``,
            ``script``, ``script_code``, ``scripts`` ...).
        labels: unique language labels (default: the codes).
        tokens_per_byte: per language, tokens per UTF-8 byte of the parallel text (NaN: not
            measured).
        parallel_tokens: per language, tokens of the same documents (a parallel corpus): when
            given, ``fertility`` compares these (tokens for the same content) instead of
            tokens per byte, which mostly measures how many UTF-8 bytes a script's letters take.
        bits_per_byte: per language, the model's bits per byte on held-out text (NaN: not
            measured).
        parallel_bits: per language, the model's bits (negative log-likelihood) on the same
            held-out documents: when given, ``familiarity`` compares these (bits for the same
            content) instead of bits per byte, which follows UTF-8 widths as tokens per byte does.
        token_counts: per language, the input token-id distribution (None: not measured).
        coordinates: per language, (latitude, longitude) in degrees, None where unknown.
        family_depths: Glottolog family -> depth of its deepest path (language included): the
            per-family scale of ``genealogy`` (default: each pair's deeper lineage).
        extra_features: further per-language features to keep (e.g. byte and token counts).
        notes: notes to carry over (what the caller could not measure).
    """
    n = len(languages)
    labels = [str(x) for x in (labels or [lang.get("code") for lang in languages])]
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} languages")
    notes = list(notes)

    def per_language(values: Sequence[float] | None) -> np.ndarray:
        if values is None:
            return np.full(n, np.nan)
        out = np.asarray(values, dtype=np.float64)
        if out.shape != (n,):
            raise ValueError(f"expected {n} values per language, got shape {out.shape}")
        return out

    features = {
        "tokens_per_byte": per_language(tokens_per_byte),
        "bits_per_byte": per_language(bits_per_byte),
    }
    for name, values in (extra_features or {}).items():
        features[name] = per_language(values)
    langs = [dict(lang) for lang in languages]
    distances: dict[str, np.ndarray] = {}
    distances.update(script_distances(langs))
    distances["genealogy"] = graded_genealogical_distance(langs, family_depths)
    distances["genealogy_lineage"] = genealogical_distance([_with_code(x) for x in langs])

    def missing(values: np.ndarray) -> list[str]:
        return [labels[i] for i in np.flatnonzero(~np.isfinite(values) | (values <= 0))]

    tpb = features["tokens_per_byte"]
    same_text = per_language(parallel_tokens)
    fertility_source = SOURCES["fertility"]
    if parallel_tokens is not None and not missing(same_text):
        distances["fertility"] = _pairwise(np.log(same_text), lambda a, b: abs(a - b))
        fertility_source = FERTILITY_PARALLEL
    elif missing(tpb):
        notes.append(f"fertility left out: no tokens/byte for {', '.join(missing(tpb))}")
    else:
        distances["fertility"] = _pairwise(np.log(tpb), lambda a, b: abs(a - b))
    bpb = features["bits_per_byte"]
    same_bits = per_language(parallel_bits)
    familiarity_source = SOURCES["familiarity"]
    if parallel_bits is not None and not missing(same_bits):
        distances["familiarity"] = _pairwise(np.log(same_bits), lambda a, b: abs(a - b))
        familiarity_source = FAMILIARITY_PARALLEL
    elif missing(bpb):
        notes.append(f"familiarity left out: no bits/byte for {', '.join(missing(bpb))}")
    else:
        distances["familiarity"] = _pairwise(bpb, lambda a, b: abs(a - b))
    if token_counts is None or any(t is None for t in token_counts):
        notes.append("token_overlap left out: the input token distributions were not measured")
    else:
        distances["token_overlap"] = _pairwise(
            np.array(token_counts, dtype=object), token_overlap_distance
        )
    coords = list(coordinates) if coordinates is not None else [None] * n
    no_coords = [labels[i] for i, c in enumerate(coords) if c is None or not np.isfinite(c).all()]
    if no_coords:
        notes.append(f"geography left out: no coordinates for {', '.join(no_coords)}")
    else:
        distances["geography"] = _pairwise(
            np.array(coords, dtype=object), lambda a, b: great_circle_km(a, b) / 1000.0
        )
    distances = {k: _check_distance(k, distances[k]) for k in DISTANCES if k in distances}
    sources = {k: SOURCES[k] for k in distances}
    if "fertility" in sources:
        sources["fertility"] = fertility_source
    if "familiarity" in sources:
        sources["familiarity"] = familiarity_source
    sources.update({k: FEATURE_SOURCES.get(k, k) for k in features})
    categories = {
        key: [str(lang.get(key) or "") for lang in langs] for key in ("family", "genus", "script")
    }
    return Covariates(labels, features, distances, sources, categories, notes)


# ---------------------------------------------------------------------------------------------
# The artifact: RUN/covariates/covariates.{safetensors,json} and languages.csv


def covariates_dir(run_dir: Path) -> Path:
    return Path(run_dir) / artifacts.COVARIATES_DIR


def save_covariates(
    run_dir: Path, cov: Covariates, identity: Mapping[str, Any] | None = None
) -> Path:
    """Write ``RUN/covariates/covariates.*`` (atomic) and ``languages.csv``; returns the JSON.

    ``identity``: what the covariates were measured from (model, profile, settings), recorded
    for resuming.
    """
    import torch

    folder = covariates_dir(run_dir)
    tensors = {
        f"feature.{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in cov.features.items()
    }
    tensors.update(
        {
            f"distance.{k}": torch.from_numpy(np.ascontiguousarray(v))
            for k, v in cov.distances.items()
        }
    )
    meta = {
        **dict(identity or {}),
        "languages": list(cov.languages),
        "features": list(cov.features),
        "distances": list(cov.distances),
        "defaults": {"script": DEFAULT_SCRIPT, "genealogy": DEFAULT_GENEALOGY},
        "sources": dict(cov.sources),
        "categories": {k: list(v) for k, v in cov.categories.items()},
        "notes": list(cov.notes),
    }
    path = artifacts.save_artifact(folder, artifacts.COVARIATES, tensors, meta, kind=KIND)
    artifacts.atomic_write_text(folder / artifacts.COVARIATES_TABLE, covariates_table(cov))
    return path


def covariates_table(cov: Covariates) -> str:
    """CSV: one row per language, its label, categories and features."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    cats, feats = list(cov.categories), list(cov.features)
    writer.writerow(["language", *cats, *feats])
    for i, label in enumerate(cov.languages):
        values = [cov.features[f][i] for f in feats]
        writer.writerow(
            [label, *(cov.categories[c][i] for c in cats)]
            + ["" if not np.isfinite(v) else f"{v:.6g}" for v in values]
        )
    return buffer.getvalue()


def load_covariates(run_dir: Path) -> Covariates | None:
    """The covariates of a run folder, or None when it has none (a bad artifact raises)."""
    folder = covariates_dir(run_dir)
    if not artifacts.artifact_exists(folder, artifacts.COVARIATES):
        return None
    tensors, meta = artifacts.load_artifact(folder, artifacts.COVARIATES, kind=KIND)
    return Covariates(
        languages=[str(x) for x in meta["languages"]],
        features={k: tensors[f"feature.{k}"].numpy().astype(np.float64) for k in meta["features"]},
        distances={
            k: tensors[f"distance.{k}"].numpy().astype(np.float64) for k in meta["distances"]
        },
        sources={str(k): str(v) for k, v in meta["sources"].items()},
        categories={k: [str(x) for x in v] for k, v in (meta.get("categories") or {}).items()},
        notes=[str(x) for x in meta.get("notes") or []],
    )
