"""``summary.json``: the headline answers with their numbers, and one sentence per finding.

Keys: ``groups`` (each group test; ``headline_group`` is the first configured group, Romance by
default), ``agreement`` (whole-model Mantel tests by reference), ``shared_experts`` (counts per
layer with intervals, peak layer, centre of mass), ``specific_experts``, ``stability`` (null
without seed runs), ``clustering``, ``notes`` and ``findings`` (topic + sentence).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from babelmoe.analysis.config import AnalysisConfig, config_record
from babelmoe.analysis.covariates import measures_block
from babelmoe.analysis.io import clean
from babelmoe.analysis.profile_analysis import AnalysisResult, GroupResult
from babelmoe.analysis.seeds import SeedStudy
from babelmoe.analysis.stats.metrics import METRICS
from babelmoe.analysis.stats.permutation import TestResult
from babelmoe.artifacts import SCHEMA_VERSION


def fmt(x: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits; "n/a" for missing values."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.{digits}g}"


def fmt_p(test: TestResult | dict[str, Any]) -> str:
    """ "p = 0.0119 (exact over 84 relabelings; smallest attainable p = 0.0119)"."""
    t = test.as_dict() if isinstance(test, TestResult) else test
    how = "exact over" if t["exact"] else "Monte Carlo,"
    return (
        f"p = {fmt(t['p_value'])} ({how} {t['n_permutations']:,} relabelings; "
        f"smallest attainable p = {fmt(t['min_p'])})"
    )


def _ci_text(ci: tuple[float, float] | list, level: float) -> str:
    if ci[0] is None or not all(math.isfinite(x) for x in ci):
        return "no interval"
    return f"{level:.0%} CI {fmt(ci[0])} to {fmt(ci[1])}"


def group_sentence(g: GroupResult, metric: str, alpha: float, level: float) -> str:
    verdict = (
        "closer to each other than to the other languages"
        if g.test.statistic < 0
        else "not closer to each other than to the other languages"
    )
    signif = "significant" if g.test.p_value < alpha else "not significant"
    return (
        f"{g.name} ({', '.join(g.members)}) are {verdict}: mean within-group "
        f"{METRICS[metric].label} minus mean distance to the rest = {fmt(g.test.statistic)} "
        f"({_ci_text(g.ci, level)}); {fmt_p(g.test)}; Holm-adjusted p = {fmt(g.p_holm)}; "
        f"{signif} at alpha = {alpha}."
    )


def _group_dict(g: GroupResult, alpha: float) -> dict[str, Any]:
    return {
        "name": g.name,
        "members": g.members,
        "source": g.source,
        **g.test.as_dict(),
        "ci": list(g.ci),
        "p_holm": g.p_holm,
        "closer": bool(g.test.statistic < 0),
        "significant": bool(g.test.p_value < alpha),
    }


def _shared(result: AnalysisResult, config: AnalysisConfig) -> tuple[dict[str, Any], str]:
    ex = result.experts
    counts, n_layers = ex.shared_counts, ex.shared.shape[0]
    total, cells = int(counts.sum()), ex.shared.size
    depth = max(n_layers - 1, 1)
    info = {
        "threshold": config.shared_threshold,
        "per_layer": counts.tolist(),
        "per_layer_ci_low": ex.shared_ci[0].tolist(),
        "per_layer_ci_high": ex.shared_ci[1].tolist(),
        "total": total,
        "share": total / cells,
        "peak_layer": ex.peak_layer,
        "peak_support": ex.peak_support,
        "centre_of_mass": ex.centre,
        "centre_ci": list(ex.centre_ci),
        "relative_depth": ex.centre / depth,
        "relative_depth_ci": [x / depth for x in ex.centre_ci],
    }
    text = (
        f"Shared experts (frequency >= {config.shared_threshold} in all {len(result.codes)} "
        f"languages): {total:,} of {cells:,} ({total / cells:.1%}). Most sit in layer "
        f"{ex.peak_layer} ({int(counts[ex.peak_layer])} experts; the same peak layer in "
        f"{ex.peak_support:.0%} of bootstrap resamples); centre of mass at layer "
        f"{fmt(ex.centre)} of 0-{n_layers - 1} (relative depth {fmt(ex.centre / depth, 2)}, "
        f"{_ci_text([x / depth for x in ex.centre_ci], config.statistics.ci_level)})."
    )
    above = int(np.sum(counts > ex.shared_ci[1]))
    info["layers_above_interval"] = above
    if above:
        text += (
            f" In {above} of {n_layers} layers the observed count lies above its bootstrap "
            "interval: resampling adds noise that pulls some languages below the threshold, so "
            "resampled counts run low; read the interval as sampling spread, and expect more "
            "tokens to find at least as many shared experts."
        )
    if total == 0:
        text = f"No expert reaches frequency {config.shared_threshold} in every language."
    return info, text


def _agreement(result: AnalysisResult, config: AnalysisConfig) -> tuple[dict[str, Any], list[str]]:
    info, texts = {}, []
    whole = {a.reference: a for a in result.agreement if a.layer is None}
    for ref, a in whole.items():
        info[ref] = {**a.test.as_dict(), "ci": list(a.ci), "method": "spearman"}
    for ref in ("genealogy", "script"):
        if ref not in whole:
            continue
        a, other = whole[ref], "script" if ref == "genealogy" else "genealogy"
        partial = whole.get(f"{ref} | {other}")
        text = (
            f"Activation distance vs {ref} distance: Mantel Spearman r = "
            f"{fmt(a.test.statistic)} ({_ci_text(a.ci, config.statistics.ci_level)}), "
            f"{fmt_p(a.test)}"
        )
        if partial is not None:
            text += (
                f"; with {other} partialled out r = {fmt(partial.test.statistic)}, "
                f"p = {fmt(partial.test.p_value)}"
            )
        per_layer = [x for x in result.agreement if x.layer is not None and x.reference == ref]
        if per_layer:
            alpha = config.statistics.alpha
            hits = sum(x.test.p_value < alpha for x in per_layer)
            text += f"; significant (p < {alpha}) in {hits} of {len(per_layer)} layers"
        texts.append(text + ".")
    return info, texts


def _stability(study: SeedStudy, config: AnalysisConfig) -> tuple[dict[str, Any], str]:
    info: dict[str, Any] = {
        "runs": study.runs,
        "n_seeds": len(study.runs),
        "distance_std_max": float(study.distance["std"].max()),
        "distance_std_mean": float(
            study.distance["std"][np.triu_indices(len(study.codes), 1)].mean()
        ),
        "shared_per_layer": study.shared_counts.tolist(),
        "shared_peak_layers": study.peaks,
        "shared_centres": study.centres.tolist(),
        "notes": study.notes,
        "groups": {
            name: {
                "holds": study.holds(name, config.statistics.alpha),
                "statistic": [g.test.statistic for g in found],
                "p_value": [g.test.p_value for g in found],
                "ci": [list(g.ci) for g in found],
            }
            for name, found in study.groups.items()
        },
    }
    text = f"Across {len(study.runs)} k-means seeds: "
    if study.ari is not None:
        info["ari_mean"], info["ari_min"] = float(study.ari.mean()), float(study.ari.min())
        info["ari_per_layer_mean"] = study.ari.mean(axis=0).tolist()
        text += (
            f"the partitions agree with mean adjusted Rand index {fmt(info['ari_mean'])} "
            f"(lowest pair and layer {fmt(info['ari_min'])}); "
        )
    text += (
        f"language distances move by at most {fmt(info['distance_std_max'])} (std over "
        f"seeds); shared-expert peak layers {', '.join(map(str, study.peaks))}, centres "
        f"of mass {', '.join(fmt(c) for c in study.centres)}"
    )
    for name in study.groups:
        holds = study.holds(name, config.statistics.alpha)
        ps = ", ".join(fmt(p) for p in info["groups"][name]["p_value"])
        text += f"; the {name} finding holds in {sum(holds)} of {len(holds)} seeds (p = {ps})"
    return info, text + "."


def build_summary(
    result: AnalysisResult, config: AnalysisConfig, meta: dict[str, Any], study: SeedStudy | None
) -> dict[str, Any]:
    """The JSON-ready summary of an analysis (see the module docstring)."""
    findings = []
    groups = [_group_dict(g, config.statistics.alpha) for g in result.groups]
    for g in result.groups:
        findings.append(
            {
                "topic": f"group: {g.name}",
                "text": group_sentence(
                    g, result.primary, config.statistics.alpha, config.statistics.ci_level
                ),
            }
        )
    agreement, texts = _agreement(result, config)
    findings += [{"topic": "genealogy and script", "text": t} for t in texts]
    shared, text = _shared(result, config)
    findings.append({"topic": "shared experts", "text": text})
    specific = {
        "rule": {"high": config.specific_high, "low": config.specific_low},
        "per_language": {
            c: int(result.experts.specific[i].sum()) for i, c in enumerate(result.codes)
        },
        "lape_per_language": {
            c: int(result.experts.lape[i].sum()) for i, c in enumerate(result.codes)
        },
        "lape_tau": result.experts.lape_tau,
        "group_specific": {k: int(v.sum()) for k, v in result.experts.group_specific.items()},
    }
    top = max(specific["per_language"], key=specific["per_language"].get)
    findings.append(
        {
            "topic": "language-specific experts",
            "text": (
                f"Language-specific experts (frequency >= {config.specific_high} in one language, "
                f"<= {config.specific_low} in all others): "
                + ", ".join(f"{c} {k}" for c, k in specific["per_language"].items())
                + f"; most for {top}. LAPE (lowest-entropy {config.lape_entropy_quantile:.0%}): "
                + ", ".join(f"{c} {k}" for c, k in specific["lape_per_language"].items())
                + "."
            ),
        }
    )
    order = [result.codes[i] for i in result.order]
    findings.append(
        {
            "topic": "clustering",
            "text": (
                f"Hierarchical clustering ({config.linkage} linkage, "
                f"{METRICS[result.primary].label}) orders the languages {', '.join(order)}."
            ),
        }
    )
    stability = None
    if study is not None:
        stability, text = _stability(study, config)
        findings.append({"topic": "stability over seeds", "text": text})
    return clean(
        {
            "schema_version": SCHEMA_VERSION,
            "kind": "analysis_summary",
            "languages": result.codes,
            "n_layers": int(result.frequency.shape[1]),
            "n_experts": int(result.frequency.shape[2]),
            "tokens": {c: int(t) for c, t in zip(result.codes, result.tokens, strict=True)},
            "primary_metric": result.primary,
            "config": config_record(config),
            "profile": {k: meta.get(k) for k in ("model", "corpus", "partition_sha256")},
            "headline_group": groups[0] if groups and groups[0]["source"] == "config" else None,
            "groups": groups,
            "agreement": agreement,
            "references": measures_block(config.script_measure, config.genealogy_measure),
            "shared_experts": shared,
            "specific_experts": specific,
            "clustering": {"order": order, "linkage": config.linkage},
            "stability": stability,
            "notes": result.notes,
            "findings": findings,
        }
    )
