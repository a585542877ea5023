"""Family against script, all confounds at once: MRM with language-level uncertainty.

What :func:`family_mrm` computes from the activation distance (the whole model and every layer)
and a set of predictor distances between the same n languages (script, genealogy, and, when the
covariates exist, geography, tokenizer fertility, familiarity, token overlap):

1. **MRM** (:mod:`babelmoe.analysis.stats.mrm`): standardised coefficients on ranks
   (``ranks=True``, the house default; ``False`` fits the raw distances), R^2, the R^2 each
   predictor explains uniquely and the joint part, per scope; permutation p-values by relabeling
   languages (coefficients two-sided, Freedman-Lane by default; R^2 one-sided, relabeling the
   response), Holm over layers for the per-layer table.
2. **Restricted permutations** (``stats.language_resampling.BlockPermutations``): script's
   coefficient tested with languages relabeled only within their family, genealogy's only
   within their script (``restricted``). The number of distinct relabelings is reported; a test
   whose smallest possible p-value exceeds ``alpha`` is flagged and not run.
3. **Uncertainty over languages**: a bootstrap over languages (percentile intervals of every
   coefficient, R^2 and unique R^2), the jackknife (leave one language out: the range of each
   coefficient) and leave-one-family-out (each coefficient without each family of at least two
   languages).
4. **Resource as a moderator** (``moderators``): languages split at the median of a
   per-language feature (bits per byte: how well the model knows the language; tokens per
   byte: tokenizer fertility; lower = better served). The MRM is fitted on the pairs within each
   half; the claim is the difference of the genealogy (and script) coefficient, better-served
   minus less-served half, with a language-bootstrap interval and a permutation p-value over
   random splits of the same sizes (the feature relabeled over the languages).
5. **One correction family** for everything a headline rests on: every whole-model coefficient,
   the whole-model R^2, the restricted tests that can be run and the moderator differences,
   Holm-adjusted together (:func:`claims`).

A coefficient claim ("activation distance grows with X, the others held fixed") holds when its
Holm-adjusted p-value is below ``alpha`` and its language-bootstrap interval lies above 0; a
moderator claim when the adjusted p is below ``alpha`` and the interval of the difference
excludes 0.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from babelmoe.analysis.config import StatisticsConfig
from babelmoe.analysis.stats import language_resampling as lr
from babelmoe.analysis.stats import mrm
from babelmoe.analysis.stats.bootstrap import percentile_interval
from babelmoe.analysis.stats.permutation import LabelPermutations, holm
from babelmoe.errors import BabelmoeError, require

logger = logging.getLogger(__name__)

DEFAULT_PREDICTORS = (
    "script",
    "genealogy",
    "geography",
    "fertility",
    "familiarity",
    "token_overlap",
)
"""The MRM's predictors, in this order, where present and not degenerate."""

MODERATOR_LABELS = {
    "bits_per_byte": "bits per byte (how well the model knows the language)",
    "tokens_per_byte": "tokens per byte (tokenizer fertility)",
}

SMALL_SAMPLE = 20
"""Below this many languages the findings carry a caveat (the paper's nine cannot separate the
references)."""

CLAIMS_SCHEMA_VERSION = 1
INTERVAL = "language bootstrap"


@dataclass
class MRMConfig:
    """How the MRM family-against-script analysis runs."""

    predictors: tuple[str, ...] = DEFAULT_PREDICTORS
    """Predictor distances to use, where present (others are skipped, with a note)."""
    ranks: bool = True
    """Fit on the ranks of every distance (the house default, like the Mantel tests), not on the
    raw values."""
    coefficient_test: str = "freedman_lane"
    """How a coefficient is tested: ``freedman_lane`` (relabel the languages of the residual of
    the model without that predictor: the predictor's own contribution) or ``response``
    (relabel the response: Legendre's MRM, the joint null). R^2 always relabels the response."""
    restricted: tuple[tuple[str, str], ...] = (("script", "family"), ("genealogy", "script"))
    """(predictor, language field): test the predictor's coefficient relabeling languages only
    within groups of equal field (script within families, genealogy within scripts)."""
    n_restricted_permutations: int = 9999
    """Random within-block relabelings per restricted test."""
    n_language_bootstrap: int = 1000
    """Bootstrap resamples of the languages (0: no language-level intervals)."""
    moderators: tuple[str, ...] = ("bits_per_byte", "tokens_per_byte")
    """Per-language features (of the covariates) to split the languages by, at the median."""
    moderated: tuple[str, ...] = ("genealogy", "script")
    """Predictors whose coefficient the moderator analysis compares between the halves."""
    n_moderator_permutations: int = 999
    """Random splits for the moderator's permutation p-value."""
    min_group: int = 6
    """Fewest languages per half for the moderator analysis."""
    min_family: int = 2
    """Leave-one-family-out covers the families with at least this many languages."""
    statistics: StatisticsConfig = field(default_factory=StatisticsConfig)
    """Random relabelings of the languages (the identity comes on top; every relabeling when
    there are at most ``exact_limit``, n <= 9 languages), interval level, level of the claims
    (after Holm adjustment), seed of the relabelings and of the resamples (``STATISTICS``)."""
    batch_size: int = 100
    """Resamples fitted at once (memory ~ batch x pairs x (scopes + predictors) x 8 bytes)."""

    STATISTICS: ClassVar[tuple[str, ...]] = (
        "ci_level",
        "n_permutations",
        "exact_limit",
        "alpha",
        "seed",
    )

    def __post_init__(self) -> None:
        require(len(self.predictors) >= 1, "the MRM needs at least one predictor")
        require(
            self.coefficient_test in ("freedman_lane", "response"),
            "coefficient_test must be freedman_lane or response",
        )
        require(self.n_restricted_permutations >= 1, "n_restricted_permutations must be >= 1")
        require(self.n_language_bootstrap >= 0, "n_language_bootstrap must be >= 0")
        require(self.n_moderator_permutations >= 1, "n_moderator_permutations must be >= 1")
        require(self.batch_size >= 1, "batch_size must be >= 1")
        self.predictors = tuple(self.predictors)
        self.restricted = tuple((str(a), str(b)) for a, b in self.restricted)


@dataclass
class RestrictedTest:
    """One coefficient tested by relabeling languages only within blocks."""

    predictor: str
    within: str  # the language field that defines the blocks
    n_blocks: int
    largest_blocks: list[int]
    n_relabelings: float  # distinct within-block relabelings (the group's size)
    n_permutations: int
    exact: bool
    feasible: bool
    beta: float
    p: float  # NaN when not feasible
    note: str = ""

    @property
    def id(self) -> str:
        return f"restricted.{self.predictor}.within_{self.within}"


@dataclass
class ModeratorTest:
    """One predictor's coefficient in the better- and less-served half of the languages."""

    feature: str
    predictor: str
    threshold: float  # the split: better-served languages have feature <= threshold
    better: list[str]
    less: list[str]
    beta_better: float
    beta_less: float
    difference: float  # better - less
    ci: tuple[float, float]
    ci_better: tuple[float, float]
    ci_less: tuple[float, float]
    p: float
    n_permutations: int

    @property
    def id(self) -> str:
        return f"moderator.{self.feature}.{self.predictor}"


@dataclass
class MRMResult:
    """Everything :func:`family_mrm` computes. Scope 0 is the whole model, scope 1 + l layer l."""

    labels: list[str]
    predictors: list[str]
    sources: dict[str, str]
    beta: np.ndarray  # [K, k]
    p: np.ndarray  # [K, k]
    p_layers_holm: np.ndarray  # [K, k] Holm over layers (NaN for the whole model)
    r2: np.ndarray  # [K]
    r2_p: np.ndarray  # [K]
    unique: np.ndarray  # [K, k]
    joint: np.ndarray  # [K]
    ci: np.ndarray  # [2, K, k] language bootstrap
    r2_ci: np.ndarray  # [2, K]
    unique_ci: np.ndarray  # [2, K, k]
    jackknife: np.ndarray  # [2, K, k] min and max over leave-one-language-out
    n_permutations: int
    exact: bool
    n_bootstrap: int
    condition_number: float
    predictor_correlation: np.ndarray  # [k, k] of the (ranked) predictors
    restricted: list[RestrictedTest]
    lofo_families: list[str]
    lofo_sizes: list[int]
    lofo_beta: np.ndarray  # [F, k] whole model
    lofo_r2: np.ndarray  # [F]
    moderators: list[ModeratorTest]
    families: list[str | None] = field(default_factory=list)  # per language
    notes: list[str] = field(default_factory=list)

    @property
    def n_layers(self) -> int:
        return self.beta.shape[0] - 1


def select_predictors(
    candidates: Mapping[str, np.ndarray], wanted: Sequence[str], ranks: bool = True
) -> tuple[list[str], list[str]]:
    """The predictors of ``wanted`` that can enter the model, and a note for each that cannot:
    missing, not finite for every pair, constant, or (near) collinear with one already in
    (rank correlation above 0.999 in absolute value)."""
    kept: list[str] = []
    columns: list[np.ndarray] = []
    notes: list[str] = []
    absent = [name for name in wanted if name not in candidates]
    if absent:
        notes.append(f"not available: {', '.join(absent)}")
    for name in wanted:
        if name not in candidates:
            continue
        values = mrm.upper(candidates[name])
        if not np.isfinite(values).all():
            notes.append(f"{name}: not measured for every pair of languages, left out")
            continue
        z = mrm.standardise(values, ranks)
        if not np.isfinite(z).all():
            notes.append(f"{name}: the same for every pair of languages, left out")
            continue
        twins = [k for k, c in zip(kept, columns, strict=True) if abs(z @ c / len(z)) > 0.999]
        if twins:
            notes.append(f"{name}: orders the pairs like {twins[0]}, left out")
            continue
        kept.append(name)
        columns.append(z)
    return kept, notes


def _interval(samples: np.ndarray, level: float) -> np.ndarray:
    if samples.shape[0] == 0:
        return np.full((2, *samples.shape[1:]), np.nan)
    return percentile_interval(samples, level)


def family_mrm(
    response: np.ndarray,
    predictors: Mapping[str, np.ndarray],
    languages: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    config: MRMConfig | None = None,
    features: Mapping[str, np.ndarray] | None = None,
    sources: Mapping[str, str] | None = None,
    plan: LabelPermutations | None = None,
) -> MRMResult:
    """Run the analysis of the module docstring.

    Args:
        response: [K, n, n] activation distances (the whole model first, then each layer).
        predictors: name -> [n, n] symmetric predictor distance (zero diagonal).
        languages: the profile's language records (``family``, ``script`` ... for the blocks of
            the restricted tests and for leave-one-family-out), in the order of the matrices.
        labels: one label per language.
        config: the configuration.
        features: name -> [n] per-language feature (NaN: not measured), for the moderators.
        sources: name -> where a predictor comes from (reported as is).
        plan: the unrestricted relabelings to use (shared with the Mantel tests when given;
            its size wins over ``config.statistics.n_permutations``).

    Raises:
        BabelmoeError: fewer than 4 languages, or no usable predictor.
    """
    config = config or MRMConfig()
    stats = config.statistics
    response = np.asarray(response, dtype=np.float64)
    n = response.shape[-1]
    if n < 4:
        raise BabelmoeError(
            f"the MRM needs at least 4 languages, the profile has {n}", "profile more languages"
        )
    used, notes = select_predictors(predictors, config.predictors, config.ranks)
    if not used:
        raise BabelmoeError(
            "no usable predictor distance for the MRM (" + "; ".join(notes) + ")",
            "profile languages of more than one script and more than one family",
        )
    k = len(used)
    y_raw = mrm.upper(response)  # [K, P]
    x_raw = np.stack([mrm.upper(predictors[name]) for name in used], axis=1)  # [P, k]
    zy = mrm.standardise(y_raw, config.ranks)
    zx = mrm.standardise(x_raw.T, config.ranks).T
    alive = np.isfinite(zy).all(axis=1)  # scopes whose distances vary
    zy_safe = np.where(alive[:, None], zy, 0.0)
    observed = mrm.fit(zy_safe, zx)
    corr = zx.T @ zx / len(zx)
    cond = mrm.condition(zx)
    if cond > 30:
        notes.append(f"the predictors are strongly collinear (condition number {cond:.0f})")

    # 1. Permutation tests over all scopes at once.
    plan = plan or LabelPermutations.cached(n, stats.exact_limit, stats.n_permutations, stats.seed)
    logger.info("MRM: %d predictors, %d scopes, %d relabelings", k, len(zy), len(plan.pair_index))
    p, r2_p = mrm.permutation_p_values(zy_safe, zx, plan.pair_index, config.coefficient_test)
    dead = ~alive
    beta = np.where(dead[:, None], np.nan, observed.beta)
    unique = np.where(dead[:, None], np.nan, observed.unique)
    r2 = np.where(dead, np.nan, observed.r2)
    p, r2_p = np.where(dead[:, None], np.nan, p), np.where(dead, np.nan, r2_p)
    p_layers = np.full_like(p, np.nan)
    for j in range(k):
        p_layers[1:, j] = holm(p[1:, j].tolist())

    # 2. Language bootstrap, jackknife, leave one family out.
    n_boot = config.n_language_bootstrap
    draws = lr.bootstrap_draws(n, n_boot, stats.seed)
    boot_w = lr.pair_weights(lr.bootstrap_weights(draws, n)) if n_boot else np.zeros((0, 0))
    if n_boot:
        logger.info("MRM: language bootstrap, %d resamples", n_boot)
        boot = mrm.weighted_fit(y_raw, x_raw, boot_w, config.ranks, config.batch_size)
        ci, r2_ci = (
            _interval(boot.beta, stats.ci_level),
            _interval(boot.r2, stats.ci_level),
        )
        unique_ci = _interval(boot.unique, stats.ci_level)
    else:
        ci = unique_ci = np.full((2, *beta.shape), np.nan)
        r2_ci = np.full((2, len(r2)), np.nan)
    jk = mrm.weighted_fit(
        y_raw, x_raw, lr.pair_weights(lr.jackknife_weights(n)), config.ranks, config.batch_size
    )
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices stay NaN
        jackknife = np.stack([np.nanmin(jk.beta, axis=0), np.nanmax(jk.beta, axis=0)])
    for arr in (ci, unique_ci, jackknife):  # a scope without a usable distance has none
        arr[:, dead] = np.nan
    r2_ci[:, dead] = np.nan
    families = [lang.get("family") for lang in languages]
    lofo_names, lofo_lang_w = lr.group_out_weights(families, config.min_family, min_left=4)
    lofo = mrm.weighted_fit(
        y_raw[:1], x_raw, lr.pair_weights(lofo_lang_w), config.ranks, config.batch_size
    )
    lofo_sizes = [int((w == 0).sum()) for w in lofo_lang_w]

    # 3. Restricted permutations (whole model).
    restricted = [
        _restricted(pred, key, used, zy_safe[:1], zx, beta[0], languages, config)
        for pred, key in config.restricted
    ]

    # 4. Resource as a moderator (whole model).
    moderators: list[ModeratorTest] = []
    for feature in config.moderators:
        values = None if features is None else features.get(feature)
        if values is None:
            notes.append(f"moderator {feature}: not measured, skipped")
            continue
        tests, note = _moderator(
            feature, np.asarray(values, np.float64), labels, used, y_raw[:1], x_raw, boot_w, config
        )
        moderators += tests
        if note:
            notes.append(note)

    return MRMResult(
        labels=list(labels),
        predictors=used,
        sources={name: str((sources or {}).get(name, "")) for name in used},
        beta=beta,
        p=p,
        p_layers_holm=p_layers,
        r2=r2,
        r2_p=r2_p,
        unique=unique,
        joint=r2 - unique.sum(axis=1),
        ci=ci,
        r2_ci=r2_ci,
        unique_ci=unique_ci,
        jackknife=jackknife,
        n_permutations=len(plan.pair_index),
        exact=plan.exact,
        n_bootstrap=n_boot,
        condition_number=cond,
        predictor_correlation=corr,
        restricted=restricted,
        lofo_families=lofo_names,
        lofo_sizes=lofo_sizes,
        lofo_beta=lofo.beta[:, 0, :],
        lofo_r2=lofo.r2[:, 0],
        moderators=moderators,
        families=[None if f is None else str(f) for f in families],
        notes=notes,
    )


def _restricted(
    predictor: str,
    key: str,
    used: list[str],
    zy: np.ndarray,
    zx: np.ndarray,
    beta: np.ndarray,
    languages: Sequence[Mapping[str, Any]],
    config: MRMConfig,
) -> RestrictedTest:
    blocks = [lang.get(key) or None for lang in languages]
    plan = lr.BlockPermutations(
        blocks,
        config.n_restricted_permutations,
        config.statistics.seed,
        config.statistics.exact_limit,
    )
    common = {
        "predictor": predictor,
        "within": key,
        "n_blocks": len(plan.blocks),
        "largest_blocks": plan.sizes[:5],
        "n_relabelings": float(plan.n_distinct),
        "n_permutations": plan.n_permutations,
        "exact": plan.exact,
    }
    if predictor not in used:
        return RestrictedTest(
            **common, feasible=False, beta=float("nan"), p=float("nan"), note="not in the model"
        )
    j = used.index(predictor)
    if not plan.feasible(config.statistics.alpha):
        note = (
            f"only {plan.n_distinct:g} distinct relabelings within {key}: the smallest possible "
            f"p-value is above alpha = {config.statistics.alpha}; not tested"
        )
        return RestrictedTest(
            **common, feasible=False, beta=float(beta[j]), p=float("nan"), note=note
        )
    p = float(mrm.permutation_p_values(zy, zx, plan.pair_index, config.coefficient_test)[0][0, j])
    return RestrictedTest(**common, feasible=True, beta=float(beta[j]), p=p)


def _moderator(
    feature: str,
    values: np.ndarray,
    labels: Sequence[str],
    used: list[str],
    y_raw: np.ndarray,
    x_raw: np.ndarray,
    boot_w: np.ndarray,
    config: MRMConfig,
) -> tuple[list[ModeratorTest], str]:
    """Median split of the languages by ``values`` (lower = better served) and the MRM in
    each half; see the module docstring."""
    preds = [x for x in config.moderated if x in used]
    measured = np.flatnonzero(np.isfinite(values))
    if not preds:
        return [], f"moderator {feature}: none of {', '.join(config.moderated)} is in the model"
    if len(measured) < 2 * config.min_group:
        return [], (
            f"moderator {feature}: measured for {len(measured)} languages, fewer than "
            f"2 x {config.min_group}; skipped"
        )
    n = len(values)
    order = measured[np.argsort(values[measured], kind="stable")]
    half = (len(order) + 1) // 2
    better, less = order[:half], order[half:]
    threshold = float(values[better[-1]])

    def group_weights(members: np.ndarray) -> np.ndarray:  # [n] 0/1 language weights
        w = np.zeros(n)
        w[members] = 1.0
        return w

    lang_w = np.stack([group_weights(better), group_weights(less)])  # [2, n]
    obs = mrm.weighted_fit(y_raw, x_raw, lr.pair_weights(lang_w), config.ranks).beta[:, 0]  # [2, k]
    # Bootstrap: the same language draws as the main bootstrap, each half's pairs apart.
    nan2 = np.full(2, np.nan)
    ci = {p: (nan2, nan2, nan2) for p in preds}
    if boot_w.size:
        halves = lr.pair_weights(lang_w)  # [2, P]
        fits = [
            mrm.weighted_fit(y_raw, x_raw, boot_w * h, config.ranks, config.batch_size).beta[:, 0]
            for h in halves
        ]  # 2 x [B, k]
        for p in preds:
            j = used.index(p)
            ci[p] = (
                _interval(fits[0][:, j] - fits[1][:, j], config.statistics.ci_level),
                _interval(fits[0][:, j], config.statistics.ci_level),
                _interval(fits[1][:, j], config.statistics.ci_level),
            )
    # Permutation: random splits of the measured languages into halves of the same sizes.
    rng = np.random.default_rng(config.statistics.seed + 1)
    n_perm = config.n_moderator_permutations
    shuffled = np.stack([order] + [rng.permutation(order) for _ in range(n_perm)])  # [N+1, m]
    w_better = np.zeros((n_perm + 1, n))
    w_less = np.zeros((n_perm + 1, n))
    np.put_along_axis(w_better, shuffled[:, :half], 1.0, axis=1)
    np.put_along_axis(w_less, shuffled[:, half:], 1.0, axis=1)
    null_better = mrm.weighted_fit(
        y_raw, x_raw, lr.pair_weights(w_better), config.ranks, config.batch_size
    ).beta[:, 0]
    null_less = mrm.weighted_fit(
        y_raw, x_raw, lr.pair_weights(w_less), config.ranks, config.batch_size
    ).beta[:, 0]
    null_diff = null_better - null_less  # [N+1, k]
    out = []
    for p in preds:
        j = used.index(p)
        diff_ci, better_ci, less_ci = ci[p]
        out.append(
            ModeratorTest(
                feature=feature,
                predictor=p,
                threshold=threshold,
                better=[labels[i] for i in better],
                less=[labels[i] for i in less],
                beta_better=float(obs[0, j]),
                beta_less=float(obs[1, j]),
                difference=float(obs[0, j] - obs[1, j]),
                ci=(float(diff_ci[0]), float(diff_ci[1])),
                ci_better=(float(better_ci[0]), float(better_ci[1])),
                ci_less=(float(less_ci[0]), float(less_ci[1])),
                p=float(mrm.p_values(null_diff[:, j], two_sided=True)),
                n_permutations=n_perm + 1,
            )
        )
    return out, ""


# ---------------------------------------------------------------------------------------------
# Claims, tables, sentences


def _holds_positive(p_adj: float, lo: float, alpha: float) -> bool:
    return bool(np.isfinite(p_adj) and p_adj < alpha and np.isfinite(lo) and lo > 0)


def _others(result: MRMResult, name: str) -> str:
    rest = [x for x in result.predictors if x != name]
    return ", ".join(rest) if rest else "nothing else"


def claims(result: MRMResult, config: MRMConfig) -> dict[str, Any]:
    """The claims the headline rests on, Holm-adjusted together (``claims.json``)."""
    stats = config.statistics
    level = f"{INTERVAL} {stats.ci_level:.0%}"
    rank_word = "ranks of " if config.ranks else ""
    items: list[dict[str, Any]] = []
    for j, name in enumerate(result.predictors):
        items.append(
            {
                "id": f"mrm.model.{name}",
                "statement": (
                    f"Whole-model activation distance grows with {name} distance when "
                    f"{_others(result, name)} are held fixed (standardised MRM coefficient on "
                    f"{rank_word}distances, {len(result.labels)} languages)."
                ),
                "estimate": float(result.beta[0, j]),
                "ci_low": float(result.ci[0, 0, j]),
                "ci_high": float(result.ci[1, 0, j]),
                "p": float(result.p[0, j]),
                "kind": "positive",
            }
        )
    items.append(
        {
            "id": "mrm.model.r2",
            "statement": (
                f"Together, {', '.join(result.predictors)} explain more of the whole-model "
                f"activation distance than under relabeled languages (MRM R^2)."
            ),
            "estimate": float(result.r2[0]),
            "ci_low": float(result.r2_ci[0, 0]),
            "ci_high": float(result.r2_ci[1, 0]),
            "p": float(result.r2_p[0]),
            "kind": "positive",
        }
    )
    for t in result.restricted:
        if not t.feasible:
            continue
        j = result.predictors.index(t.predictor)
        items.append(
            {
                "id": t.id,
                "statement": (
                    f"Whole-model activation distance grows with {t.predictor} distance "
                    f"(others held fixed) even when languages are relabeled only within their "
                    f"{t.within} (restricted permutation test of the MRM coefficient)."
                ),
                "estimate": t.beta,
                "ci_low": float(result.ci[0, 0, j]),
                "ci_high": float(result.ci[1, 0, j]),
                "p": t.p,
                "kind": "positive",
            }
        )
    for m in result.moderators:
        items.append(
            {
                "id": m.id,
                "statement": (
                    f"The {m.predictor} coefficient differs between the languages with lower "
                    f"{MODERATOR_LABELS.get(m.feature, m.feature)} and those with higher "
                    f"(median split; estimate = lower half minus upper half)."
                ),
                "estimate": m.difference,
                "ci_low": m.ci[0],
                "ci_high": m.ci[1],
                "p": m.p,
                "kind": "difference",
            }
        )
    adjusted = holm([x["p"] for x in items])
    n_tests = int(np.isfinite([x["p"] for x in items]).sum())  # Holm skips an untestable one
    out = []
    for item, p_adj in zip(items, adjusted, strict=True):
        kind = item.pop("kind")
        lo, hi = item["ci_low"], item["ci_high"]
        if kind == "positive":
            holds = _holds_positive(p_adj, lo, stats.alpha)
        else:
            excl = np.isfinite(lo) and np.isfinite(hi) and (lo > 0 or hi < 0)
            holds = bool(np.isfinite(p_adj) and p_adj < stats.alpha and excl)
        out.append(
            {
                **{k: item[k] for k in ("id", "statement", "estimate", "ci_low", "ci_high")},
                "interval": level,
                "p": item["p"],
                "p_adjusted": float(p_adj),
                "holds": holds,
            }
        )
    return {
        "schema_version": CLAIMS_SCHEMA_VERSION,
        "n_languages": len(result.labels),
        "correction": correction_text(result, config, n_tests),
        "claims": out,
    }


def correction_text(result: MRMResult, config: MRMConfig, n_tests: int) -> str:
    feasible = [t for t in result.restricted if t.feasible]
    parts = [
        f"{len(result.predictors)} whole-model MRM coefficients ({', '.join(result.predictors)})",
        "the whole-model R^2",
    ]
    if feasible:
        parts.append(
            f"{len(feasible)} restricted permutation tests ("
            + ", ".join(f"{t.predictor} within {t.within}" for t in feasible)
            + ")"
        )
    if result.moderators:
        parts.append(
            f"{len(result.moderators)} moderator differences ("
            + ", ".join(f"{m.predictor} by {m.feature}" for m in result.moderators)
            + ")"
        )
    skipped = [t for t in result.restricted if not t.feasible]
    tail = (
        "; not testable: " + ", ".join(f"{t.predictor} within {t.within}" for t in skipped)
        if skipped
        else ""
    )
    return (
        f"Holm over {n_tests} tests: "
        + ", ".join(parts)
        + f"; alpha = {config.statistics.alpha}"
        + tail
    )


def scope_name(k: int) -> str | int:
    return "model" if k == 0 else k - 1


def mrm_rows(result: MRMResult, headline: dict[str, float]) -> list[dict[str, Any]]:
    """One row per (scope, predictor): the table ``mrm``. ``p_holm`` is the headline family's
    adjusted p for the whole model (``headline``: claim id -> adjusted p) and Holm over layers
    for a layer."""
    rows = []
    for k in range(result.beta.shape[0]):
        for j, name in enumerate(result.predictors):
            p_holm = (
                headline.get(f"mrm.model.{name}", float("nan"))
                if k == 0
                else result.p_layers_holm[k, j]
            )
            rows.append(
                {
                    "scope": scope_name(k),
                    "predictor": name,
                    "beta": result.beta[k, j],
                    "p": result.p[k, j],
                    "p_holm": p_holm,
                    "holm_over": "headline" if k == 0 else "layers",
                    "ci_low": result.ci[0, k, j],
                    "ci_high": result.ci[1, k, j],
                    "jackknife_low": result.jackknife[0, k, j],
                    "jackknife_high": result.jackknife[1, k, j],
                    "unique_r2": result.unique[k, j],
                    "unique_r2_ci_low": result.unique_ci[0, k, j],
                    "unique_r2_ci_high": result.unique_ci[1, k, j],
                    "r2": result.r2[k],
                    "r2_p": result.r2_p[k],
                    "r2_ci_low": result.r2_ci[0, k],
                    "r2_ci_high": result.r2_ci[1, k],
                    "joint_r2": result.joint[k],
                }
            )
    return rows


def restricted_rows(result: MRMResult, headline: dict[str, float]) -> list[dict[str, Any]]:
    return [
        {
            "predictor": t.predictor,
            "within": t.within,
            "beta": t.beta,
            "p": t.p,
            "p_holm": headline.get(t.id, float("nan")),
            "p_unrestricted": result.p[0, result.predictors.index(t.predictor)]
            if t.predictor in result.predictors
            else float("nan"),
            "n_blocks": t.n_blocks,
            "largest_blocks": " ".join(str(x) for x in t.largest_blocks),
            "n_relabelings": t.n_relabelings,
            "min_p": 1.0 / t.n_relabelings if t.exact else 1.0 / t.n_permutations,
            "n_permutations": t.n_permutations,
            "exact": t.exact,
            "feasible": t.feasible,
            "note": t.note,
        }
        for t in result.restricted
    ]


def lofo_rows(result: MRMResult) -> list[dict[str, Any]]:
    rows = [
        {
            "left_out": "(none)",
            "n_left_out": 0,
            **{f"beta_{name}": result.beta[0, j] for j, name in enumerate(result.predictors)},
            "r2": result.r2[0],
        }
    ]
    for f, family in enumerate(result.lofo_families):
        rows.append(
            {
                "left_out": family,
                "n_left_out": result.lofo_sizes[f],
                **{
                    f"beta_{name}": result.lofo_beta[f, j]
                    for j, name in enumerate(result.predictors)
                },
                "r2": result.lofo_r2[f],
            }
        )
    return rows


def moderator_rows(result: MRMResult, headline: dict[str, float]) -> list[dict[str, Any]]:
    return [
        {
            "feature": m.feature,
            "predictor": m.predictor,
            "threshold": m.threshold,
            "n_better": len(m.better),
            "n_less": len(m.less),
            "beta_better": m.beta_better,
            "beta_better_ci_low": m.ci_better[0],
            "beta_better_ci_high": m.ci_better[1],
            "beta_less": m.beta_less,
            "beta_less_ci_low": m.ci_less[0],
            "beta_less_ci_high": m.ci_less[1],
            "difference": m.difference,
            "ci_low": m.ci[0],
            "ci_high": m.ci[1],
            "p": m.p,
            "p_holm": headline.get(m.id, float("nan")),
            "n_permutations": m.n_permutations,
            "better": " ".join(m.better),
            "less": " ".join(m.less),
        }
        for m in result.moderators
    ]


def _f(x: float | None, digits: int = 2) -> str:
    return f"{x:.{digits}f}" if x is not None and np.isfinite(x) else "n/a"


def _p(x: float | None) -> str:
    return f"{x:.2g}" if x is not None and np.isfinite(x) else "n/a"


def findings(result: MRMResult, config: MRMConfig, claim_block: dict[str, Any]) -> list[str]:
    """Sentences, every number with its language-level interval or adjusted p-value."""
    by_id = {c["id"]: c for c in claim_block["claims"]}
    level = f"{config.statistics.ci_level:.0%}"
    n = len(result.labels)
    on = "ranks" if config.ranks else "raw distances"
    coef = "; ".join(
        f"{name} {_f(result.beta[0, j])} [{_f(result.ci[0, 0, j])}, {_f(result.ci[1, 0, j])}]"
        f" (p_Holm = {_p(by_id[f'mrm.model.{name}']['p_adjusted'])})"
        for j, name in enumerate(result.predictors)
    )
    out = [
        f"MRM, whole model, {n} languages, all predictors at once ({on}): "
        f"standardised coefficients with {level} language-bootstrap intervals: {coef}. "
        f"R^2 = {_f(result.r2[0])} [{_f(result.r2_ci[0, 0])}, {_f(result.r2_ci[1, 0])}]; "
        f"{claim_block['correction']}."
    ]
    if n < SMALL_SAMPLE:
        n_families = len({lang for lang in result.families if lang})
        out.append(
            f"Caveat: {n} languages from {n_families} families give only {n * (n - 1) // 2} "
            f"pairs and few distinct relabelings within blocks; the language-level intervals "
            f"are wide and a sample this small cannot separate these references (run "
            f"`babelmoe study` for 69 languages and a replication sample)."
        )
    holding = [c["id"] for c in claim_block["claims"] if c["holds"]]
    out.append(
        "Claims that hold: " + (", ".join(holding) if holding else "none") + f" (of {len(by_id)})."
    )
    for t in result.restricted:
        if t.feasible:
            out.append(
                f"Restricted permutation: {t.predictor} relabeled only within {t.within} "
                f"({t.n_blocks} blocks, {t.n_relabelings:.3g} relabelings): beta "
                f"{_f(t.beta)}, p = {_p(t.p)} (p_Holm = {_p(by_id[t.id]['p_adjusted'])})."
            )
        else:
            out.append(f"Restricted permutation of {t.predictor} within {t.within}: {t.note}.")
    if result.lofo_families:
        j_ranges = "; ".join(
            f"{name} {_f(np.nanmin(result.lofo_beta[:, j]))} to "
            f"{_f(np.nanmax(result.lofo_beta[:, j]))}"
            for j, name in enumerate(result.predictors)
        )
        out.append(
            f"Leaving out one family at a time ({len(result.lofo_families)} families), the "
            f"whole-model coefficients range: {j_ranges}; leaving out one language: "
            + "; ".join(
                f"{name} {_f(result.jackknife[0, 0, j])} to {_f(result.jackknife[1, 0, j])}"
                for j, name in enumerate(result.predictors)
            )
            + "."
        )
        shift = np.nan_to_num(np.abs(result.lofo_beta - result.beta[0]), nan=-1.0)
        f = int(np.unravel_index(np.argmax(shift), shift.shape)[0])
        moved = ", ".join(
            f"{name} {_f(result.lofo_beta[f, j])}" for j, name in enumerate(result.predictors)
        )
        out.append(
            f"The family that moves the coefficients most is {result.lofo_families[f]} "
            f"({result.lofo_sizes[f]} languages): without it, {moved}."
        )
    for m in result.moderators:
        out.append(
            f"Moderator {m.feature}: the {m.predictor} coefficient is {_f(m.beta_better)} "
            f"[{_f(m.ci_better[0])}, {_f(m.ci_better[1])}] among the {len(m.better)} languages "
            f"with lower {m.feature} and {_f(m.beta_less)} [{_f(m.ci_less[0])}, "
            f"{_f(m.ci_less[1])}] among the other {len(m.less)}; difference "
            f"{_f(m.difference)} [{_f(m.ci[0])}, {_f(m.ci[1])}], p_Holm = "
            f"{_p(by_id[m.id]['p_adjusted'])}."
        )
    if result.n_layers:
        follow = {
            name: [
                k - 1
                for k in range(1, result.beta.shape[0])
                if result.p_layers_holm[k, j] < config.statistics.alpha and result.ci[0, k, j] > 0
            ]
            for j, name in enumerate(result.predictors)
        }
        out.append(
            f"Per layer (Holm over {result.n_layers} layers, language-bootstrap interval above "
            f"0): " + "; ".join(f"{name} in {len(v)} layers" for name, v in follow.items()) + "."
        )
    return out


def summary(result: MRMResult, config: MRMConfig, claim_block: dict[str, Any]) -> dict[str, Any]:
    """The ``mrm`` block of the family-vs-script summary (JSON-ready once cleaned)."""
    headline = {c["id"]: c["p_adjusted"] for c in claim_block["claims"]}
    sentences = findings(result, config, claim_block)
    return {
        "predictors": result.predictors,
        "sources": result.sources,
        "ranks": config.ranks,
        "n_languages": len(result.labels),
        "n_pairs": len(result.labels) * (len(result.labels) - 1) // 2,
        "n_permutations": result.n_permutations,
        "exact": result.exact,
        "n_language_bootstrap": result.n_bootstrap,
        "ci_level": config.statistics.ci_level,
        "alpha": config.statistics.alpha,
        "condition_number": result.condition_number,
        "predictor_correlation": result.predictor_correlation.tolist(),
        "model": {
            "r2": result.r2[0],
            "r2_p": result.r2_p[0],
            "r2_ci": result.r2_ci[:, 0].tolist(),
            "joint_r2": result.joint[0],
            "coefficients": [r for r in mrm_rows(result, headline) if r["scope"] == "model"],
        },
        "restricted": restricted_rows(result, headline),
        "moderators": moderator_rows(result, headline),
        "correction": claim_block["correction"],
        "notes": result.notes,
        "findings": sentences,
        "headline": [x for x in sentences if x.startswith(("MRM, whole model", "Caveat"))],
    }
