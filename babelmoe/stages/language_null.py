"""Shared and specific experts against permuted language labels: the stage that writes them.

``run_language_null(config, run_dir, ...)`` runs :func:`babelmoe.analysis.label_null.label_null`
on the run's profile (permuting language labels over its document units, within articles when
the corpus is parallel) and writes:

- ``RUN_DIR/language_null/``: ``language_null.csv/.json`` (per layer and kind: observed count,
  mean under the label null, p, shared experts that are language-agnostic / specific experts the
  null confirms), ``language_null_experts.csv/.json`` (one row per shared or specific expert),
  ``summary.json`` and ``report_section.json`` (a section of the report);
- ``RUN_DIR/family_vs_script/claims_experts.json``: the expert claims
  (:mod:`babelmoe.analysis.expert_claims`), which ``babelmoe study`` checks on its replication
  sample.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Any

import numpy as np

from babelmoe import artifacts
from babelmoe.analysis import expert_null as en
from babelmoe.analysis import label_null as ln
from babelmoe.analysis.expert_claims import expert_claims
from babelmoe.analysis.io import clean, write_table
from babelmoe.analysis.stats.bootstrap import run_bootstrap
from babelmoe.analysis.units import describe_resampling, profile_articles, resolve_paired
from babelmoe.profile.artifact import ProfileData

logger = logging.getLogger(__name__)

FOLDER = "language_null"
CLAIMS_FOLDER = "family_vs_script"
CLAIMS_FILE = "claims_experts.json"
SECTION_ORDER = 61


def run_language_null(
    config: ln.LabelNullConfig,
    run_dir: Path,
    *,
    profile: ProfileData,
    null_cfg: en.ExpertNullConfig,
    n_bootstrap: int = 200,
    paired: bool | None = None,
    ci_level: float = 0.95,
) -> dict[str, Any]:
    """Run the label null and the expert claims on ``profile``; write them (module docstring).

    Returns the block for ``summary.json`` (numbers, findings)."""
    run_dir = Path(run_dir)
    articles = profile_articles(profile)
    unit_counts = profile.unit_counts.numpy()
    unit_tokens = profile.unit_tokens.numpy()
    index = articles.index if articles is not None and articles.parallel else None
    result = ln.label_null(unit_counts, unit_tokens, index, config)

    # The within-layer null, whole model: totals of its draws.
    freq = profile.frequency.numpy()
    within = en.expert_null(freq, null_cfg)
    layer_share: dict[str, tuple[float, float, float]] = {}
    rng = np.random.default_rng(null_cfg.statistics.seed)
    draws = null_cfg.n_draws
    shared_draws, specific_draws = en.null_draws(freq, null_cfg, rng, draws)
    for kind, null in (("shared", shared_draws), ("specific", specific_draws)):
        observed = float(getattr(within, kind).sum())
        p = ((null.sum(axis=1) >= observed).sum() + 1) / (draws + 1) if draws else np.nan
        layer_share[kind] = (observed, float(getattr(within, f"{kind}_expected").sum()), float(p))

    # Intervals of the observed totals: the document bootstrap.
    use_paired = resolve_paired(paired, articles)
    boot: dict[str, np.ndarray] | None = None
    if n_bootstrap > 0:

        def statistic(f: np.ndarray) -> dict[str, np.ndarray]:  # f [B, n, L, E]
            shared = (f >= config.shared_threshold).all(axis=1).sum(axis=(-2, -1))
            spec = ln.specific_language(f, config.specific_high, config.specific_low)
            return {"shared": shared, "specific": (spec >= 0).sum(axis=(-2, -1))}

        boot = run_bootstrap(
            unit_counts,
            unit_tokens,
            statistic,
            n_bootstrap,
            config.statistics.seed,
            paired=use_paired,
            articles=articles.index if use_paired and articles is not None else None,
        )
    resampling = describe_resampling(use_paired, articles)
    interval = (
        f"{ci_level:.0%} document bootstrap of the observed count (B = {n_bootstrap}; "
        f"{'paired over articles' if use_paired else 'independent per language'}), "
        f"denominator held fixed; threshold counts shrink under resampling, so the interval "
        f"may lie below the estimate"
    )
    claims = expert_claims(
        result, layer_share, boot, len(profile.codes), config.statistics.alpha, ci_level, interval
    )
    block = summary(result, claims)
    block["resampling"] = resampling
    if int((unit_tokens > 0).sum(axis=1).max(initial=0)) < 2:
        block["findings"].append(
            "Every language has a single document unit: permuting labels only renames the "
            "languages, so the language-label null cannot tell language from document here "
            "(profile more documents or more --units)."
        )

    out = run_dir / FOLDER
    with artifacts.run_lock(run_dir):
        write_table(
            out,
            "language_null",
            ln.layer_rows(result),
            "Shared and specific experts per layer against permuted language labels",
        )
        write_table(
            out,
            "language_null_experts",
            ln.expert_rows(result, profile.codes),
            "Every shared or specific expert: frequencies and label-null p-values",
        )
        write_table(
            out,
            "expert_claims",
            claims["claims"],
            f"The expert claims of {CLAIMS_FOLDER}/{CLAIMS_FILE} ({claims['correction']})",
        )
        artifacts.atomic_write_json(
            out / artifacts.SUMMARY_FILE,
            clean({"schema_version": artifacts.SCHEMA_VERSION, "kind": "language_null", **block}),
        )
        artifacts.atomic_write_json(out / artifacts.SECTION_FILE, _section(block))
        artifacts.atomic_write_json(run_dir / CLAIMS_FOLDER / CLAIMS_FILE, clean(claims))
    logger.info("wrote %s and %s", out, run_dir / CLAIMS_FOLDER / CLAIMS_FILE)
    return block


def summary(result: ln.LabelNullResult, claims: dict[str, Any]) -> dict[str, Any]:
    """Numbers and sentences of the label null."""
    shared, specific = int(result.shared.sum()), int(result.specific.sum())
    agnostic, confirmed = int(result.shared_agnostic.sum()), int(result.specific_confirmed.sum())
    dependent = int(result.dependent.sum())
    texts = []
    null_shared = float(result.null_mean("shared").sum())
    null_specific = float(result.null_mean("specific").sum())
    strata = (
        "within articles (each article's versions reassigned among the languages that have it)"
        if result.strata == "article"
        else "over all document units"
    )
    texts.append(
        f"Language-label null ({result.n_permutations} permutations of the language labels "
        f"{strata}): {dependent} of {result.dependent.size} experts have a frequency that "
        f"depends on language (Benjamini-Hochberg, alpha {result.alpha})."
    )
    if shared:
        ratio = float(np.nanmedian(result.dispersion_ratio[result.shared_mask]))
        texts.append(
            f"Shared experts: {shared} observed, {null_shared:.1f} on average with permuted "
            f"labels (p = {result.total_p('shared'):.3g}); {agnostic} of {shared} "
            f"({agnostic / shared:.0%}) are shared because they are frequent in every document "
            f"regardless of language (no language dependence beyond the null), the other "
            f"{shared - agnostic} are shared but modulated by language (their spread across "
            f"languages is a median {ratio:.3g} times the spread with permuted labels)."
        )
    else:
        texts.append(f"No shared experts ({null_shared:.1f} on average with permuted labels).")
    texts.append(
        f"Language-specific experts: {specific} observed, {null_specific:.1f} on average with "
        f"permuted labels (p = {result.total_p('specific'):.3g}); {confirmed} of them have a "
        f"language-dependent frequency that in their language exceeds the null (p < "
        f"{result.alpha})."
    )
    return {
        "n_permutations": result.n_permutations,
        "strata": result.strata,
        "shared": {
            "observed": result.shared.tolist(),
            "label_null_mean": result.null_mean("shared").tolist(),
            "p_value": result.layer_p("shared").tolist(),
            "language_agnostic": result.shared_agnostic.tolist(),
            "median_dispersion_ratio": float(
                np.nanmedian(result.dispersion_ratio[result.shared_mask])
            )
            if shared
            else None,
        },
        "specific": {
            "observed": result.specific.tolist(),
            "label_null_mean": result.null_mean("specific").tolist(),
            "p_value": result.layer_p("specific").tolist(),
            "confirmed": result.specific_confirmed.tolist(),
        },
        "language_dependent": result.dependent.sum(axis=-1).tolist(),
        "claims": claims["claims"],
        "findings": texts,
    }


def _section(block: dict[str, Any]) -> dict[str, Any]:
    parts = [f"<p>{html.escape(text)}</p>" for text in block["findings"]]
    parts.append(f"<p class='note'>{html.escape(block['resampling'])}</p>")
    return {
        "schema_version": artifacts.SCHEMA_VERSION,
        "title": "Shared and specific experts against permuted language labels",
        "order": SECTION_ORDER,
        "html": "".join(parts),
        "figures": [],
        "tables": [
            {"path": "language_null.json", "title": "Experts per layer against the label null"},
            {"path": "expert_claims.json", "title": "Expert claims (Holm over the claims)"},
        ],
    }
