"""Reference distances between languages from their metadata, and language groups.

Genealogical distance: a language's lineage is its ``classification`` (family down to the lowest
subgroup; ``[family, genus]`` when it has none) followed by the language itself. For languages i
and j, ``d = 1 - depth(deepest shared ancestor) / D``, where depth counts the shared leading
entries of the two lineages and D is the length of the longest lineage among the profiled
languages. Different families give 1; siblings in the deepest subgroup give the smallest value.
Because depths come from one tree, d is an ultrametric: average-linkage clustering of it
reproduces the family tree, which the dendrogram figure shows beside the activation clustering.

Script distance: 0 for the same ``script``, 1 otherwise. Family and genus distances: 0 same, 1
different (a language without the field is in a class of its own).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def lineage(language: dict[str, Any]) -> list[str]:
    """Classification from the family down, then the language's code."""
    path = [str(x) for x in (language.get("classification") or []) if x]
    if not path:
        path = [str(language[k]) for k in ("family", "genus") if language.get(k)]
    return [*path, f"<{language['code']}>"]


def _shared_depth(a: list[str], b: list[str]) -> int:
    depth = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        depth += 1
    return depth


def genealogical_distance(languages: Sequence[dict[str, Any]]) -> np.ndarray:
    """[n, n] ultrametric distance from the classification lineages (see module docstring)."""
    paths = [lineage(lang) for lang in languages]
    deepest = max(len(p) for p in paths)
    n = len(paths)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                out[i, j] = 1.0 - _shared_depth(paths[i], paths[j]) / deepest
    missing = [lang["code"] for lang, p in zip(languages, paths, strict=True) if len(p) == 1]
    if missing:
        logger.warning(
            "no classification or family for %s: treated as isolates", ", ".join(missing)
        )
    return out


def category_distance(languages: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    """[n, n] 0 where both languages have the same (non-empty) ``key``, else 1."""
    values = [lang.get(key) or f"<{lang['code']}>" for lang in languages]
    n = len(values)
    return np.array([[0.0 if values[i] == values[j] else 1.0 for j in range(n)] for i in range(n)])


def script_distance(languages: Sequence[dict[str, Any]]) -> np.ndarray:
    """[n, n] 0 same script, 1 different."""
    return category_distance(languages, "script")


def _names(language: dict[str, Any]) -> set[str]:
    keys = ("code", "bcp47", "iso639_3", "iso639_1", "name")
    names = {str(language[k]).lower() for k in keys if language.get(k)}
    if language.get("bcp47"):
        names.add(str(language["bcp47"]).split("-")[0].lower())
    return names


def resolve_members(
    languages: Sequence[dict[str, Any]], members: Sequence[str]
) -> tuple[list[int], list[str]]:
    """Indices of ``members`` (matched to code, BCP 47 tag or its language subtag, ISO codes or
    name, case-insensitive) and the members that matched no profiled language."""
    found, missing = [], []
    for member in members:
        hits = [i for i, lang in enumerate(languages) if member.lower() in _names(lang)]
        if hits:
            found.append(hits[0])
        else:
            missing.append(member)
    return sorted(set(found)), missing


def metadata_groups(languages: Sequence[dict[str, Any]]) -> dict[str, list[int]]:
    """Every family and genus with >= 2 profiled members and >= 2 non-members."""
    n = len(languages)
    groups: dict[str, list[int]] = {}
    for key in ("family", "genus"):
        values = sorted({str(lang[key]) for lang in languages if lang.get(key)})
        for value in values:
            members = [i for i, lang in enumerate(languages) if lang.get(key) == value]
            if len(members) >= 2 and n - len(members) >= 2:
                groups[f"{value} {key}"] = members
    return groups
