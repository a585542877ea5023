"""The analysis of one profile, as pure computation: similarities, tests, experts, intervals.

``analyse_profile(profile, config)`` returns an ``AnalysisResult`` holding arrays only; the runner
turns it into tables, figures and ``summary.json``. Every similarity, the group statistics, the
Mantel correlations and the shared/specific counts get percentile bootstrap intervals over the
profile's document units (see ``analysis.bootstrap``); p-values come from label permutations
(see ``analysis.permutation``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.cluster.hierarchy import leaves_list
from scipy.stats import rankdata

from babelmoe.analysis import experts as ex
from babelmoe.analysis.config import AnalysisConfig
from babelmoe.analysis.covariates import reference_distances
from babelmoe.analysis.genealogy import (
    category_distance,
    metadata_groups,
    resolve_members,
)
from babelmoe.analysis.stats.bootstrap import (
    Statistic,
    check_units,
    percentile_interval,
    run_bootstrap,
)
from babelmoe.analysis.stats.clustering import align_tree, cluster
from babelmoe.analysis.stats.metrics import as_distance, pairwise
from babelmoe.analysis.stats.permutation import (
    LabelPermutations,
    TestResult,
    group_statistic,
    group_test,
    holm,
    mantel_many,
    partial_mantel,
)
from babelmoe.analysis.units import describe_resampling, profile_articles, resolve_paired
from babelmoe.errors import BabelmoeError
from babelmoe.profile.artifact import ProfileData

logger = logging.getLogger(__name__)

Interval = tuple[float, float]
NAN_INTERVAL: Interval = (float("nan"), float("nan"))


@dataclass
class MetricResult:
    """One metric, whole model and per layer, with bootstrap intervals (None when not run)."""

    name: str
    model: np.ndarray  # [n, n]
    layers: np.ndarray  # [L, n, n]
    model_ci: np.ndarray | None = None  # [2, n, n]
    layers_ci: np.ndarray | None = None  # [2, L, n, n]


@dataclass
class GroupResult:
    """Are the group's languages closer to each other than to the rest (primary distance)?"""

    name: str
    members: list[str]
    source: str  # "config" or "metadata"
    test: TestResult
    ci: Interval
    p_holm: float = float("nan")


@dataclass
class AgreementResult:
    """Mantel (or partial Mantel) test of activation distance against a reference distance."""

    reference: str  # genealogy, family, genus, script, "genealogy | script", "script | genealogy"
    layer: int | None  # None: whole model
    test: TestResult
    ci: Interval = NAN_INTERVAL


@dataclass
class ExpertResult:
    """Shared and specific experts with per-layer counts and their intervals."""

    shared: np.ndarray  # [L, E] bool
    shared_ci: np.ndarray  # [2, L] count interval
    centre: float  # centre of mass of shared counts (layer index)
    centre_ci: Interval
    peak_support: float  # share of resamples whose peak layer equals the observed one
    specific: np.ndarray  # [n, L, E] bool (threshold rule)
    specific_ci: np.ndarray  # [2, n, L]
    group_specific: dict[str, np.ndarray]  # name -> [L, E] bool
    lape: np.ndarray  # [n, L, E] bool
    lape_entropy: np.ndarray  # [L, E]
    lape_tau: float

    @property
    def shared_counts(self) -> np.ndarray:
        return self.shared.sum(axis=-1)

    @property
    def peak_layer(self) -> int:
        return int(np.argmax(self.shared_counts))


@dataclass
class AnalysisResult:
    """Everything ``analyse_profile`` computes, as arrays indexed like the profile."""

    languages: list[dict[str, Any]]
    frequency: np.ndarray  # [n, L, E]
    tokens: np.ndarray  # [n]
    metrics: dict[str, MetricResult]
    primary: str
    distance: np.ndarray  # [n, n] symmetric primary distance
    linkage: np.ndarray
    order: list[int]
    references: dict[str, np.ndarray]  # genealogy, family, genus, script: [n, n]
    genealogy_linkage: np.ndarray
    genealogy_order: list[int]
    agreement: list[AgreementResult]
    groups: list[GroupResult]
    experts: ExpertResult
    notes: list[str] = field(default_factory=list)
    # bootstrap resamples of the primary distance, whole model [B, n, n] and per layer
    # [B, L, n, n], for analyses that need intervals of statistics of them (None: no bootstrap)
    distance_samples: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def codes(self) -> list[str]:
        return [lang["code"] for lang in self.languages]


def _validate(profile: ProfileData) -> None:
    if len(profile.codes) < 2:
        raise BabelmoeError("the profile has fewer than 2 languages", "profile more languages")
    empty = [c for c, t in zip(profile.codes, profile.tokens.tolist(), strict=True) if t <= 0]
    if empty:
        raise BabelmoeError(
            f"language(s) {', '.join(empty)} have no counted tokens in the profile",
            "re-run profile with text for them or leave them out",
        )
    if not np.array_equal(profile.unit_counts.sum(dim=1).numpy(), profile.counts.numpy()):
        logger.warning("unit_counts do not add up to counts: intervals use the units")


Groups = dict[str, tuple[list[int], str]]  # name -> (language indices, "config" | "metadata")


def _groups(profile: ProfileData, config: AnalysisConfig, notes: list[str]) -> Groups:
    n, out, seen = len(profile.codes), {}, set()
    candidates = [(name, m, "config") for name, m in config.groups.items()]
    for name, idx in (metadata_groups(profile.languages) if config.auto_groups else {}).items():
        candidates.append((name, [profile.codes[i] for i in idx], "metadata"))
    for name, members, source in candidates:
        idx, missing = resolve_members(profile.languages, members)
        if missing:
            notes.append(f"group {name}: {', '.join(missing)} not profiled")
        if len(idx) < 2 or n - len(idx) < 1:
            notes.append(f"group {name} skipped: needs >= 2 members and >= 1 other language")
            continue
        if frozenset(idx) not in seen:
            seen.add(frozenset(idx))
            out[name] = (idx, source)
    return out


def _statistic(config: AnalysisConfig, metrics: list[str], experts: bool = True) -> Statistic:
    def statistic(freq: np.ndarray) -> dict[str, np.ndarray]:  # freq [B, n, L, E]
        batch, n = freq.shape[:2]
        flat = freq.reshape(batch, n, -1)
        by_layer = np.swapaxes(freq, 1, 2)  # [B, L, n, E]
        out = {}
        for name in metrics:
            out[f"{name}/model"] = pairwise(flat, name, config.kl_epsilon)
            out[f"{name}/layers"] = pairwise(by_layer, name, config.kl_epsilon)
        if not experts:
            return out
        out["shared"] = ex.shared_mask(freq, config.shared_threshold).sum(axis=-1)  # [B, L]
        spec = ex.specific_mask(freq, config.specific_high, config.specific_low)
        out["specific"] = spec.sum(axis=-1)  # [B, n, L]
        return out

    return statistic


def _correlations(samples: np.ndarray, reference: np.ndarray, rows, cols) -> np.ndarray:
    """Spearman correlation of each sample's triangle [B, n, n] with the reference triangle."""
    x = rankdata(samples[:, rows, cols], axis=-1)
    y = rankdata(reference[rows, cols])
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x @ y) / (np.linalg.norm(x, axis=-1) * np.linalg.norm(y))


def analyse_profile(
    profile: ProfileData,
    config: AnalysisConfig,
    bootstrap_metrics: list[str] | None = None,
    seed_run: bool = False,
) -> AnalysisResult:
    """Run every analysis on one profile. ``bootstrap_metrics`` limits which metrics get
    intervals (default: all of ``config.metrics``); the primary metric always gets them.
    ``seed_run``: only what the seed study reads (distances, group tests with their intervals,
    shared-expert counts): no Mantel tests and no intervals of expert counts."""
    stats = config.statistics
    _validate(profile)
    notes: list[str] = []
    langs = profile.languages
    freq = profile.frequency.numpy()  # [n, L, E]
    n = freq.shape[0]
    flat, by_layer = freq.reshape(n, -1), np.swapaxes(freq, 0, 1)

    metrics = {
        name: MetricResult(
            name,
            pairwise(flat, name, config.kl_epsilon),
            pairwise(by_layer, name, config.kl_epsilon),
        )
        for name in config.metrics
    }
    distance = as_distance(metrics[config.primary_metric].model, config.primary_metric)
    layer_distance = as_distance(metrics[config.primary_metric].layers, config.primary_metric)
    tree, order = cluster(distance, config.linkage)
    named = reference_distances(langs, config.script_measure, config.genealogy_measure)
    references = {
        "genealogy": named["genealogy"],
        "family": category_distance(langs, "family"),
        "genus": category_distance(langs, "genus"),
        "script": named["script"],
    }
    genealogy_tree, _ = cluster(references["genealogy"], "average")
    if n > 1:
        genealogy_tree = align_tree(genealogy_tree, order)
    genealogy_order = [int(i) for i in leaves_list(genealogy_tree)] if n > 1 else [0]
    groups = _groups(profile, config, notes)

    # Bootstrap: every interval from the same resamples.
    boot_metrics = list(
        dict.fromkeys([config.primary_metric, *(bootstrap_metrics or config.metrics)])
    )
    samples: dict[str, np.ndarray] = {}
    if stats.n_bootstrap > 0:
        check_units(profile.unit_counts.numpy(), profile.unit_tokens.numpy(), profile.codes)
        logger.info("bootstrap: %d resamples of %d languages' units", stats.n_bootstrap, n)
        articles = profile_articles(profile)
        paired = resolve_paired(stats.bootstrap_paired, articles)
        notes.append(describe_resampling(paired, articles))
        samples = run_bootstrap(
            profile.unit_counts.numpy(),
            profile.unit_tokens.numpy(),
            _statistic(config, boot_metrics, experts=not seed_run),
            stats.n_bootstrap,
            stats.seed,
            config.batch_size,
            paired,
            articles=articles.index if paired and articles is not None else None,
        )
        for name in boot_metrics:
            metrics[name].model_ci = percentile_interval(samples[f"{name}/model"], stats.ci_level)
            metrics[name].layers_ci = percentile_interval(samples[f"{name}/layers"], stats.ci_level)
    dist_samples = (
        as_distance(
            samples[f"{config.primary_metric}/model"].astype(np.float64), config.primary_metric
        )
        if samples
        else None
    )

    def interval(values: np.ndarray | None) -> Interval:
        if values is None:
            return NAN_INTERVAL
        lo, hi = percentile_interval(values, stats.ci_level)
        return float(lo), float(hi)

    # Agreement with genealogy and script (Mantel, Spearman, one-sided).
    agreement: list[AgreementResult] = []
    if seed_run:
        notes.append("seed run: Mantel tests and intervals of expert counts not computed")
    elif n >= 4:
        plan = LabelPermutations.cached(
            n,
            stats.exact_limit,
            stats.n_permutations,
            stats.seed,
        )
        rows, cols = plan.rows, plan.cols
        for ref, ref_dist in references.items():
            whole, *by_layer = mantel_many(plan, [distance, *layer_distance], ref_dist)
            ci = interval(
                None if dist_samples is None else _correlations(dist_samples, ref_dist, rows, cols)
            )
            agreement.append(AgreementResult(ref, None, whole, ci))
            if ref in ("genealogy", "script"):
                agreement += [AgreementResult(ref, k, t) for k, t in enumerate(by_layer)]
        for a, b in (("genealogy", "script"), ("script", "genealogy")):
            test = partial_mantel(plan, distance, references[a], references[b])
            agreement.append(AgreementResult(f"{a} | {b}", None, test))
    else:
        notes.append("Mantel tests skipped: they need at least 4 languages")

    group_results = []
    for name, (idx, source) in groups.items():
        test = group_test(
            distance,
            idx,
            stats.exact_limit,
            stats.n_permutations,
            stats.seed,
        )
        ci = interval(None if dist_samples is None else group_statistic(dist_samples, idx))
        group_results.append(GroupResult(name, [profile.codes[i] for i in idx], source, test, ci))
    for group, adjusted in zip(
        group_results, holm([g.test.p_value for g in group_results]), strict=True
    ):
        group.p_holm = adjusted

    experts = _experts(freq, config, groups, samples, interval)
    return AnalysisResult(
        languages=langs,
        frequency=freq,
        tokens=profile.tokens.numpy(),
        metrics=metrics,
        primary=config.primary_metric,
        distance=distance,
        linkage=tree,
        order=order,
        references=references,
        genealogy_linkage=genealogy_tree,
        genealogy_order=genealogy_order,
        agreement=agreement,
        groups=group_results,
        experts=experts,
        notes=notes,
        distance_samples=None
        if dist_samples is None
        else (
            dist_samples,
            as_distance(
                samples[f"{config.primary_metric}/layers"].astype(np.float64), config.primary_metric
            ),
        ),
    )


def _experts(
    freq: np.ndarray,
    config: AnalysisConfig,
    groups: Groups,
    samples: dict[str, np.ndarray],
    interval: Callable[[np.ndarray | None], Interval],
) -> ExpertResult:
    shared = ex.shared_mask(freq, config.shared_threshold)
    counts = shared.sum(axis=-1)
    n, n_layers = freq.shape[:2]
    lape, tau = ex.lape_specific(freq, config.lape_filter_quantile, config.lape_entropy_quantile)
    if "shared" in samples:
        boot_shared = samples["shared"].astype(np.float64)  # [B, L]
        shared_ci = percentile_interval(boot_shared, config.statistics.ci_level)
        centre_ci = interval(ex.centre_of_mass(boot_shared))
        peak_support = float(np.mean(np.argmax(boot_shared, axis=-1) == np.argmax(counts)))
        specific_ci = percentile_interval(samples["specific"], config.statistics.ci_level)
    else:
        shared_ci = np.full((2, n_layers), np.nan)
        centre_ci, peak_support = NAN_INTERVAL, float("nan")
        specific_ci = np.full((2, n, n_layers), np.nan)
    return ExpertResult(
        shared=shared,
        shared_ci=shared_ci,
        centre=float(ex.centre_of_mass(counts)),
        centre_ci=centre_ci,
        peak_support=peak_support,
        specific=ex.specific_mask(freq, config.specific_high, config.specific_low),
        specific_ci=specific_ci,
        group_specific={
            name: ex.group_specific_mask(freq, idx, config.specific_high, config.specific_low)
            for name, (idx, _) in groups.items()
        },
        lape=lape,
        lape_entropy=ex.lape_entropy(freq),
        lape_tau=tau,
    )
