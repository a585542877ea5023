"""Rows of the analysis tables, built from an ``AnalysisResult`` (pure; the runner writes them).

Table name -> (description, rows) from ``analysis_tables``:
  languages          one row per language: metadata, tokens, units, position in clustering order
  similarity         metric, scope (model | layer), layer, lang_a, lang_b, value, ci_low, ci_high;
                     symmetric metrics list each unordered pair once, KL both directions
  agreement          Mantel tests of activation distance vs genealogy / family / genus / script
                     (whole model, partial, and per layer)
  groups             the group tests ("closer to each other than to the rest")
  experts_per_layer  layer, kind (shared | specific | lape | group), language, count, ci
  shared_experts     every shared expert with its smallest and mean frequency
  specific_experts   every specific expert (threshold rule, LAPE, group rule) with frequencies
"""

from __future__ import annotations

from typing import Any

import numpy as np

from babelmoe.analysis.io import Row
from babelmoe.analysis.profile_analysis import AnalysisResult
from babelmoe.analysis.stats.metrics import METRICS


def _ci(ci: np.ndarray | None, index: tuple) -> tuple[float, float]:
    if ci is None:
        return float("nan"), float("nan")
    return float(ci[(0, *index)]), float(ci[(1, *index)])


def similarity_rows(result: AnalysisResult) -> list[Row]:
    codes, n = result.codes, len(result.codes)
    rows = []
    for name, m in result.metrics.items():
        pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
        if METRICS[name].symmetric:
            pairs = [(i, j) for i, j in pairs if i < j]
        scopes = [("model", None, m.model, m.model_ci)]
        scopes += [
            (
                "layer",
                layer,
                m.layers[layer],
                None if m.layers_ci is None else m.layers_ci[:, layer],
            )
            for layer in range(m.layers.shape[0])
        ]
        for scope, layer, matrix, ci in scopes:
            for i, j in pairs:
                lo, hi = _ci(ci, (i, j))
                rows.append(
                    {
                        "metric": name,
                        "scope": scope,
                        "layer": layer,
                        "lang_a": codes[i],
                        "lang_b": codes[j],
                        "value": float(matrix[i, j]),
                        "ci_low": lo,
                        "ci_high": hi,
                    }
                )
    return rows


def agreement_rows(result: AnalysisResult) -> list[Row]:
    return [
        {
            "reference": a.reference,
            "layer": a.layer,
            "method": "spearman",
            "test": "partial mantel" if "|" in a.reference else "mantel",
            "r": a.test.statistic,
            "ci_low": a.ci[0],
            "ci_high": a.ci[1],
            "p_value": a.test.p_value,
            "n_permutations": a.test.n_permutations,
            "exact": a.test.exact,
            "min_p": a.test.min_p,
        }
        for a in result.agreement
    ]


def group_rows(result: AnalysisResult, alpha: float) -> list[Row]:
    return [
        {
            "group": g.name,
            "members": ",".join(g.members),
            "source": g.source,
            "metric": result.primary,
            "statistic": g.test.statistic,
            "ci_low": g.ci[0],
            "ci_high": g.ci[1],
            "p_value": g.test.p_value,
            "p_holm": g.p_holm,
            "n_permutations": g.test.n_permutations,
            "exact": g.test.exact,
            "min_p": g.test.min_p,
            "closer": bool(g.test.statistic < 0),
            "significant": bool(g.test.p_value < alpha),
        }
        for g in result.groups
    ]


def experts_per_layer_rows(result: AnalysisResult) -> list[Row]:
    ex, codes = result.experts, result.codes
    rows = []
    for layer in range(ex.shared.shape[0]):
        rows.append(
            {
                "layer": layer,
                "kind": "shared",
                "language": "all",
                "count": int(ex.shared[layer].sum()),
                "ci_low": ex.shared_ci[0, layer],
                "ci_high": ex.shared_ci[1, layer],
            }
        )
        for i, code in enumerate(codes):
            rows.append(
                {
                    "layer": layer,
                    "kind": "specific",
                    "language": code,
                    "count": int(ex.specific[i, layer].sum()),
                    "ci_low": ex.specific_ci[0, i, layer],
                    "ci_high": ex.specific_ci[1, i, layer],
                }
            )
            rows.append(
                {
                    "layer": layer,
                    "kind": "lape",
                    "language": code,
                    "count": int(ex.lape[i, layer].sum()),
                    "ci_low": None,
                    "ci_high": None,
                }
            )
        for name, mask in ex.group_specific.items():
            rows.append(
                {
                    "layer": layer,
                    "kind": "group",
                    "language": name,
                    "count": int(mask[layer].sum()),
                    "ci_low": None,
                    "ci_high": None,
                }
            )
    return rows


def shared_rows(result: AnalysisResult) -> list[Row]:
    freq = result.frequency
    return [
        {
            "layer": int(layer),
            "expert": int(expert),
            "min_frequency": float(freq[:, layer, expert].min()),
            "mean_frequency": float(freq[:, layer, expert].mean()),
        }
        for layer, expert in zip(*np.nonzero(result.experts.shared), strict=True)
    ]


def specific_rows(result: AnalysisResult) -> list[Row]:
    freq, ex, codes = result.frequency, result.experts, result.codes
    rows = []

    def add(rule: str, language: str, members: list[int], layer: int, expert: int) -> None:
        column = freq[:, layer, expert]
        rest = np.delete(column, members)
        rows.append(
            {
                "rule": rule,
                "language": language,
                "layer": layer,
                "expert": expert,
                "frequency": float(column[members].min()),
                "max_other": float(rest.max()) if rest.size else float("nan"),
                "lape_entropy": float(ex.lape_entropy[layer, expert]),
            }
        )

    for rule, mask in (("threshold", ex.specific), ("lape", ex.lape)):
        for i, layer, expert in zip(*np.nonzero(mask), strict=True):
            add(rule, codes[i], [int(i)], int(layer), int(expert))
    for group in result.groups:
        members = [codes.index(c) for c in group.members]
        for layer, expert in zip(*np.nonzero(ex.group_specific[group.name]), strict=True):
            add("group", group.name, members, int(layer), int(expert))
    return rows


def language_rows(result: AnalysisResult, unit_tokens: np.ndarray) -> list[Row]:
    position = {lang: rank for rank, lang in enumerate(result.order)}
    return [
        {
            "code": lang["code"],
            "name": lang.get("name"),
            "family": lang.get("family"),
            "genus": lang.get("genus"),
            "script": lang.get("script"),
            "classification": " > ".join(lang.get("classification") or []),
            "tokens": int(result.tokens[i]),
            "units": int((unit_tokens[i] > 0).sum()),
            "cluster_position": position[i],
        }
        for i, lang in enumerate(result.languages)
    ]


def analysis_tables(
    result: AnalysisResult, unit_tokens: np.ndarray, alpha: float
) -> dict[str, tuple[str, list[Row]]]:
    """Every table of the analysis: name -> (description, rows)."""
    tables: dict[str, tuple[str, list[dict[str, Any]]]] = {
        "languages": (
            "profiled languages, metadata and token counts",
            language_rows(result, unit_tokens),
        ),
        "similarity": (
            "language x language similarity per metric, whole model and per layer",
            similarity_rows(result),
        ),
        "agreement": (
            "Mantel tests: activation distance vs reference distances",
            agreement_rows(result),
        ),
        "groups": (
            "group tests: within-group minus group-to-rest distance",
            group_rows(result, alpha),
        ),
        "experts_per_layer": (
            "shared / specific expert counts per layer",
            experts_per_layer_rows(result),
        ),
        "shared_experts": (
            "experts at or above the shared threshold in every language",
            shared_rows(result),
        ),
        "specific_experts": ("language- and group-specific experts", specific_rows(result)),
    }
    return tables
