"""Typed configs of the analysis and diff stages (validated on construction, no I/O).

``StatisticsConfig`` holds the resampling and testing settings the analyses share (bootstrap
resamples, permutations, interval and significance levels, seed); every analysis config nests
one as ``statistics`` and names the fields it reads in ``STATISTICS``. ``config_record`` writes
such a config flat, as the artifacts record it (``summary.json``'s ``config``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from babelmoe.analysis.stats.metrics import METRICS
from babelmoe.errors import BabelmoeError, require, setting, unknown_name

# The paper's three Romance languages; resolved against code, BCP 47 tag or name of the profile.
DEFAULT_GROUPS: dict[str, tuple[str, ...]] = {"Romance": ("fr", "es", "pt")}


@dataclass(frozen=True)
class StatisticsConfig:
    """How the analyses resample and test: the settings they share (defaults suit a run).

    An analysis reads the fields its config lists in ``STATISTICS`` and ignores the others, so
    one ``StatisticsConfig`` passes unchanged from ``AnalysisConfig`` to the analyses it runs.
    """

    n_bootstrap: int = 1000
    """Bootstrap resamples of the documents (profile units) for every confidence interval."""
    bootstrap_paired: bool | None = None
    """Resample the same articles in every language (right for parallel corpora: the languages'
    frequencies then vary together, as the same content drives them); off: each language's units
    are resampled independently. None (default): paired exactly when the profile's units hold
    articles shared across languages (a parallel corpus such as UDHR; ``analysis.units``)."""
    ci_level: float = 0.95
    """Coverage of the percentile bootstrap intervals."""
    n_permutations: int = 9999
    """Random relabelings when exact enumeration would exceed ``exact_limit``."""
    exact_limit: int = 400_000
    """Enumerate every distinct permutation (or grouping) when there are at most this many."""
    label_permutations: int = 999
    """Permutations of the language labels over documents for the language-label null of shared
    and specific experts (``analysis.label_null``; 0: skip it)."""
    alpha: float = 0.05
    """Significance level of the verdicts and of the summaries' sentences."""
    seed: int = 0
    """Seed of the bootstrap and of random permutations."""

    def __post_init__(self) -> None:
        require(
            self.n_bootstrap >= 0,
            f"{setting('n_bootstrap')} must be >= 0, got {self.n_bootstrap}",
            "use 0 to skip intervals",
        )
        require(0.0 < self.ci_level < 1.0, f"{setting('ci_level')} must lie in (0, 1)")
        require(
            self.n_permutations >= 1,
            f"{setting('n_permutations')} must be >= 1, got {self.n_permutations}",
        )
        require(
            self.exact_limit >= 1, f"{setting('exact_limit')} must be >= 1, got {self.exact_limit}"
        )
        require(
            self.label_permutations >= 0,
            f"{setting('label_permutations')} must be >= 0, got {self.label_permutations}",
            "use 0 to skip the language-label null",
        )
        require(0.0 < self.alpha < 1.0, f"{setting('alpha')} must lie in (0, 1)")


def check_thresholds(shared_threshold: float, specific_high: float, specific_low: float) -> None:
    """Refuse shared / specific thresholds outside [0, 1] or a ``specific_low`` not below
    ``specific_high`` (the rule of every analysis that selects experts by frequency)."""
    values = {
        "shared_threshold": shared_threshold,
        "specific_high": specific_high,
        "specific_low": specific_low,
    }
    for name, value in values.items():
        require(0.0 <= value <= 1.0, f"{setting(name)} must lie in [0, 1], got {value}")
    require(
        specific_low < specific_high,
        f"{setting('specific_low')} must be below {setting('specific_high')}",
        f"lower {setting('specific_low')}, e.g. to 0.01",
    )


STATISTICS_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(StatisticsConfig))


def config_record(config: Any) -> dict[str, Any]:
    """``config`` (a dataclass) as the flat dict the artifacts record: ``dataclasses.asdict``
    with its ``statistics`` replaced, in place, by the statistics fields the config reads (its
    ``STATISTICS``) in ``StatisticsConfig``'s order. These are the keys, in the order, of the
    flat configs that once repeated the statistics settings (``test_config_record`` pins them)."""
    used = set(getattr(type(config), "STATISTICS", ()))
    record: dict[str, Any] = {}
    for name, value in dataclasses.asdict(config).items():
        if name == "statistics":
            record.update((k, v) for k, v in value.items() if k in used)
        else:
            record[name] = value
    return record


@dataclass
class AnalysisConfig:
    """How ``babelmoe analyse`` compares languages. Every field has a default that suits a run."""

    metrics: tuple[str, ...] = tuple(METRICS)
    """Similarity measures computed, whole model and per layer (see ``analysis.metrics``)."""
    primary_metric: str = "jensen_shannon"
    """Distance used for clustering, the Mantel tests, the group tests and the stability check."""
    kl_epsilon: float = 1e-6
    """Added to every entry of a normalised frequency vector before KL (then renormalised)."""
    linkage: str = "average"
    """scipy hierarchical-clustering method for the language dendrogram."""
    groups: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_GROUPS))
    """Named language groups tested for "closer to each other than to the rest"."""
    auto_groups: bool = True
    """Also test every family and genus of the profile with >= 2 members and >= 2 non-members."""
    shared_threshold: float = 0.05
    """An expert is shared when its frequency is >= this in every language."""
    specific_high: float = 0.05
    """An expert is specific to language X when freq(X) >= this ..."""
    specific_low: float = 0.01
    """... and the frequency in every other language is <= this (for a group: min over the
    group >= ``specific_high`` and max over the rest <= ``specific_low``)."""
    lape_filter_quantile: float = 0.95
    """LAPE (Tang et al. 2024): keep experts whose top frequency reaches this quantile of all
    frequencies; a kept expert belongs to every language whose frequency reaches it too."""
    lape_entropy_quantile: float = 0.01
    """LAPE: among kept experts, the share with the lowest entropy that counts as specific."""
    statistics: StatisticsConfig = field(default_factory=StatisticsConfig)
    """Bootstrap, permutations, interval and significance levels, seed (every field is read:
    the label null's ``label_permutations`` too)."""
    batch_size: int = 50
    """Bootstrap resamples processed at once (memory ~ batch x languages x layers x experts)."""
    script_measure: str = "script"
    """Script reference of every test and summary: ``script`` (graded: script descent and the
    letters' script shares, the default), ``script_letters`` or ``script_binary``
    (:mod:`babelmoe.analysis.covariates`)."""
    genealogy_measure: str = "genealogy"
    """Genealogical reference: ``genealogy`` (Glottolog path normalised per family, the
    default) or ``genealogy_lineage`` (depth over the sample's deepest lineage)."""

    STATISTICS: ClassVar[tuple[str, ...]] = STATISTICS_FIELDS

    def __post_init__(self) -> None:
        from babelmoe.analysis.covariates import GENEALOGY_MEASURES, SCRIPT_MEASURES

        require(
            self.script_measure in SCRIPT_MEASURES,
            f"unknown script measure {self.script_measure!r}",
            f"use one of {', '.join(SCRIPT_MEASURES)}",
        )
        require(
            self.genealogy_measure in GENEALOGY_MEASURES,
            f"unknown genealogy measure {self.genealogy_measure!r}",
            f"use one of {', '.join(GENEALOGY_MEASURES)}",
        )
        self.metrics = tuple(self.metrics)
        self.groups = {name: tuple(members) for name, members in self.groups.items()}
        unknown = [m for m in (*self.metrics, self.primary_metric) if m not in METRICS]
        if unknown:
            hint = unknown_name("metric", unknown[0], METRICS).fix
            raise BabelmoeError(f"unknown metric(s): {', '.join(unknown)}", hint)
        if self.primary_metric not in self.metrics:
            self.metrics = (*self.metrics, self.primary_metric)
        require(
            self.linkage in {"average", "complete", "single", "weighted"},
            f"unknown linkage {self.linkage!r}",
            "use average, complete, single or weighted",
        )
        for name, members in self.groups.items():
            require(
                len(members) >= 2,
                f"group {name!r} has fewer than 2 languages",
                "give at least two language codes per group",
            )
        check_thresholds(self.shared_threshold, self.specific_high, self.specific_low)
        require(0.0 < self.lape_filter_quantile < 1.0, "lape_filter_quantile must lie in (0, 1)")
        require(0.0 < self.lape_entropy_quantile <= 1.0, "lape_entropy_quantile must lie in (0, 1]")
        require(self.kl_epsilon > 0, "kl_epsilon must be positive")
        require(self.batch_size >= 1, "batch_size must be >= 1")


@dataclass
class DiffConfig:
    """How ``babelmoe diff`` compares two profiles of one architecture."""

    shared_threshold: float = 0.05
    """Shared-expert threshold (frequency >= this in every common language)."""
    top_k: int = 20
    """Experts with the largest change listed per layer."""
    z_threshold: float = 3.0
    """An expert changed beyond sampling noise when |delta| > this x its bootstrap std. error."""
    primary_metric: str = "jensen_shannon"
    """Distance used to compare the language geometry of the two profiles."""
    kl_epsilon: float = 1e-6
    """Smoothing of KL (see ``AnalysisConfig``)."""
    statistics: StatisticsConfig = field(default_factory=StatisticsConfig)
    """Bootstrap resamples (each profile's units resampled independently), their interval
    level, the Mantel test's permutations and the seed (``STATISTICS``)."""
    batch_size: int = 50
    """Bootstrap resamples processed at once."""

    STATISTICS: ClassVar[tuple[str, ...]] = (
        "n_bootstrap",
        "ci_level",
        "n_permutations",
        "exact_limit",
        "seed",
    )

    def __post_init__(self) -> None:
        require(
            0.0 <= self.shared_threshold <= 1.0,
            f"{setting('shared_threshold')} must lie in [0, 1], got {self.shared_threshold}",
            "pass e.g. 0.05",
        )
        require(
            self.top_k >= 1, f"{setting('top_k')} must be >= 1, got {self.top_k}", "pass e.g. 50"
        )
        require(
            self.z_threshold > 0,
            f"{setting('z_threshold')} must be positive, got {self.z_threshold}",
            "pass e.g. 2",
        )
        if self.primary_metric not in METRICS:
            raise unknown_name("metric", self.primary_metric, METRICS)
        require(self.kl_epsilon > 0, f"{setting('kl_epsilon')} must be positive")
        require(self.batch_size >= 1, f"{setting('batch_size')} must be >= 1")
