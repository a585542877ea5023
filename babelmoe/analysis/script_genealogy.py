"""Family against script: does activation distance follow genealogy or writing system?

Three distances between languages i and j (all [n, n], zero diagonal):

- activation: the primary distance of the analysis (Jensen-Shannon divergence of the frequency
  vectors), for the whole model and for every layer;
- genealogy and script: the references of :func:`babelmoe.analysis.covariates.reference_distances`
  in the measures the config names (``genealogy_measure``, ``script_measure``), the same ones
  ``analysis/summary.json`` uses and names under ``references``. By default genealogy is the
  Glottolog path measure normalised per family (1 across families, 0.5 for a split at a family's
  root) and script the earth mover's distance of the letters' script shares over a
  script-descent tree (Latin-Cyrillic 0.25, Latin-Tibetan 0.6, Japanese against Chinese partly
  Han). The options ``genealogy_lineage`` (1 - shared lineage depth / deepest lineage) and
  ``script_letters`` (``1 - sum_s min(p_i(s), p_j(s))``, 0.53 for Japanese against Chinese) or
  ``script_binary`` (majority script, 0/1) are the measures of earlier versions. Profiles
  written before script distributions existed fall back to their majority script (one-hot).

Statistics, as in the rest of the analysis, on ranks (Spearman), over the n(n-1)/2 pairs:

- Mantel r of activation with each reference, and the partial Mantel r of activation with one
  reference when the other is partialled out: ``r(A, S | G)`` says how far activation follows
  script among pairs of equal genealogical distance, ``r(A, G | S)`` the converse;
- the variance of the activation ranks explained by both together (R^2 of the two-predictor
  regression on ranks) and its split into the part only script explains (R^2 - r(A,G)^2), the
  part only genealogy explains (R^2 - r(A,S)^2) and the part they share;
- one-sided permutation p-values over relabelings of the languages (the activation matrix is
  relabeled, the references are kept; :mod:`babelmoe.analysis.stats.permutation`), Holm-adjusted
  over the layers;
- percentile bootstrap intervals over the profile's document units
  (:mod:`babelmoe.analysis.stats.bootstrap`), for the partial r of each reference and for their
  difference ``r(A,S|G) - r(A,G|S)``. They describe the sampling of the text, not of the
  languages: the permutation p-value is the test, the interval the precision.

A layer *follows* a reference when its partial r for it is significant after Holm adjustment
(``alpha``); it follows script *more than* genealogy when the bootstrap interval of the
difference lies above 0 (and conversely).

Contrast pairs (Hindi/Urdu, Serbian in two scripts ...) are reported one by one: their
whole-model activation distance, where it ranks among all pairs (0 = the closest pair), and its
bootstrap interval.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy.stats import rankdata

from babelmoe.analysis.config import StatisticsConfig
from babelmoe.analysis.covariates import (
    GENEALOGY_MEASURES,
    SCRIPT_MEASURES,
    measures_block,
    reference_distances,
)
from babelmoe.analysis.genealogy import category_distance
from babelmoe.analysis.stats.bootstrap import percentile_interval, run_bootstrap
from babelmoe.analysis.stats.metrics import METRICS, as_distance, pairwise
from babelmoe.analysis.stats.permutation import LabelPermutations, TestResult, holm
from babelmoe.analysis.stats.permutation import _from_null as test_from_null
from babelmoe.analysis.units import profile_articles, resolve_paired
from babelmoe.corpus.languages import script_distribution, script_overlap_distance
from babelmoe.errors import BabelmoeError, require, setting
from babelmoe.profile.artifact import ProfileData

logger = logging.getLogger(__name__)

REFERENCES = ("script", "genealogy")


@dataclass
class ScriptGenealogyConfig:
    """How the family-against-script analysis runs."""

    metric: str = "jensen_shannon"
    """Activation distance (a metric of ``analysis.stats.metrics``)."""
    kl_epsilon: float = 1e-6
    """Smoothing of KL when ``metric`` is ``kl``."""
    statistics: StatisticsConfig = field(default_factory=StatisticsConfig)
    """Relabelings of the Mantel tests (every relabeling when at most ``exact_limit``, n <= 9),
    bootstrap resamples of the document units (0: no intervals) and their pairing, interval
    level, significance level of the verdicts (after Holm adjustment over layers), seed."""
    batch_size: int = 25
    """Bootstrap resamples processed at once."""
    script_measure: str = "script"
    """Script reference (``AnalysisConfig.script_measure``)."""
    genealogy_measure: str = "genealogy"
    """Genealogical reference (``AnalysisConfig.genealogy_measure``)."""
    contrasts: tuple[tuple[str, str], ...] = (
        ("hin", "urd"),
        ("srp_cyrl", "srp_latn"),
        ("srp_latn", "hrv"),
        ("srp_cyrl", "rus"),
        ("cmn", "jpn"),
        ("tur", "kaz"),
        ("arb", "mlt"),
        ("urd", "pes"),
    )
    """Pairs of language labels reported one by one (pairs not profiled are skipped)."""

    STATISTICS: ClassVar[tuple[str, ...]] = (
        "n_bootstrap",
        "bootstrap_paired",
        "ci_level",
        "n_permutations",
        "exact_limit",
        "alpha",
        "seed",
    )

    def __post_init__(self) -> None:
        require(self.metric in METRICS, f"unknown metric {self.metric!r}")
        require(self.batch_size >= 1, f"{setting('batch_size')} must be >= 1")
        require(self.script_measure in SCRIPT_MEASURES, f"unknown {self.script_measure!r}")
        require(self.genealogy_measure in GENEALOGY_MEASURES, f"unknown {self.genealogy_measure!r}")
        self.contrasts = tuple((str(a), str(b)) for a, b in self.contrasts)


@dataclass
class ScopeResult:
    """Activation vs script and genealogy in one scope (the whole model or one layer)."""

    layer: int | None  # None: the whole model
    mantel: dict[str, TestResult]  # reference -> Mantel test
    partial: dict[str, TestResult]  # reference -> partial Mantel test (the other partialled out)
    partial_ci: dict[str, tuple[float, float]]  # reference -> bootstrap interval of partial r
    difference: float  # partial r(script) - partial r(genealogy)
    difference_ci: tuple[float, float]
    r2: float  # R^2 of activation ranks on both references' ranks
    unique: dict[str, float]  # reference -> variance only it explains
    shared: float  # variance both explain together
    p_holm: dict[str, float] = field(default_factory=dict)  # over layers (layers only)

    def follows(self, reference: str, alpha: float) -> bool:
        """Significant partial r for ``reference`` (Holm-adjusted for layers)."""
        p = self.p_holm.get(reference, self.partial[reference].p_value)
        return bool(np.isfinite(p) and p < alpha and self.partial[reference].statistic > 0)

    def verdict(self, alpha: float) -> str:
        """``script``, ``genealogy``, ``both`` or ``neither`` (which partial r is significant),
        with ``script > genealogy`` / ``genealogy > script`` when the difference's interval
        excludes 0."""
        s, g = self.follows("script", alpha), self.follows("genealogy", alpha)
        base = "both" if s and g else "script" if s else "genealogy" if g else "neither"
        lo, hi = self.difference_ci
        if np.isfinite(lo) and lo > 0:
            return f"{base}; script > genealogy"
        if np.isfinite(hi) and hi < 0:
            return f"{base}; genealogy > script"
        return base


@dataclass
class ContrastResult:
    """One named pair of languages."""

    a: str
    b: str
    distance: float
    ci: tuple[float, float]
    rank: float  # share of all pairs that are closer (0: the closest pair)
    genealogy: float
    script: float


@dataclass
class ScriptGenealogyResult:
    """Everything :func:`script_genealogy` computes."""

    labels: list[str]
    references: dict[str, np.ndarray]  # script, genealogy: [n, n]
    reference_correlation: float  # Spearman r of the two references over the pairs
    model: ScopeResult
    layers: list[ScopeResult]
    contrasts: list[ContrastResult]
    n_bootstrap: int
    notes: list[str] = field(default_factory=list)
    # family left out -> whole-model partial r (script, genealogy) on the remaining languages
    leave_one_family_out: dict[str, tuple[float, float]] = field(default_factory=dict)
    # the whole-model test again with genus (same / different, 0-1) as the genealogical distance
    genus: dict[str, TestResult] = field(default_factory=dict)
    # [1 + L, n, n] activation distances: the whole model, then each layer (for the MRM)
    distances: np.ndarray | None = None


def profile_labels(profile: ProfileData) -> list[str]:
    """One unique label per language: the corpus labels recorded in the profile (``srp_cyrl``
    and ``srp_latn`` for two versions of one language), else the codes."""
    labels = (profile.meta.get("corpus") or {}).get("labels")
    if isinstance(labels, list) and len(labels) == len(profile.codes):
        return [str(x) for x in labels]
    return list(profile.codes)


def script_distance_matrix(languages: Sequence[dict[str, Any]]) -> np.ndarray:
    """[n, n] overlap distance of the languages' script distributions (zero diagonal)."""
    shares = [script_distribution(lang) for lang in languages]
    n = len(shares)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = script_overlap_distance(shares[i], shares[j])
    return out


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks along the last axis, standardised (mean 0, population std 1); NaN when constant."""
    r = rankdata(values, axis=-1)
    r = r - r.mean(axis=-1, keepdims=True)
    std = r.std(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(std > 0, r / np.where(std > 0, std, 1.0), np.nan)


def _partials(
    x: np.ndarray, s: np.ndarray, g: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """From standardised ranks x [..., P] and fixed s, g [P]: r(x,s), r(x,g), partial r(x,s|g),
    partial r(x,g|s) and R^2 of x on both (each [...])."""
    p = x.shape[-1]
    r_xs, r_xg, r_sg = x @ s / p, x @ g / p, float(s @ g / p)
    with np.errstate(invalid="ignore", divide="ignore"):
        part_s = (r_xs - r_xg * r_sg) / np.sqrt((1 - r_xg**2) * (1 - r_sg**2))
        part_g = (r_xg - r_xs * r_sg) / np.sqrt((1 - r_xs**2) * (1 - r_sg**2))
        r2 = (r_xs**2 + r_xg**2 - 2 * r_xs * r_xg * r_sg) / (1 - r_sg**2)
    return r_xs, r_xg, part_s, part_g, r2


def _interval(samples: np.ndarray | None, level: float) -> tuple[float, float]:
    if samples is None or samples.size == 0:
        return float("nan"), float("nan")
    lo, hi = percentile_interval(np.asarray(samples, dtype=np.float64), level)
    return float(lo), float(hi)


def script_genealogy(
    profile: ProfileData,
    config: ScriptGenealogyConfig | None = None,
    distance_samples: tuple[np.ndarray, np.ndarray] | None = None,
) -> ScriptGenealogyResult:
    """Run the analysis of the module docstring on one profile.

    Args:
        profile: the profile.
        config: the configuration.
        distance_samples: bootstrap resamples of the activation distance the caller already
            has (whole model [B, n, n], layers [B, L, n, n], same metric): used instead of
            drawing new ones, so the analysis stage bootstraps once.

    Raises:
        BabelmoeError: with fewer than 4 languages, or when script and genealogy distances are
            perfectly correlated (nothing to tell apart).
    """
    config = config or ScriptGenealogyConfig()
    stats = config.statistics
    langs = profile.languages
    n = len(langs)
    if n < 4:
        raise BabelmoeError(
            f"family against script needs at least 4 languages, the profile has {n}",
            "profile more languages (e.g. babelmoe run --preset study50)",
        )
    labels = profile_labels(profile)
    notes: list[str] = []
    references = reference_distances(langs, config.script_measure, config.genealogy_measure)
    if not any(lang.get("scripts") for lang in langs):
        notes.append("the profile has no script distributions: majority scripts used (one-hot)")
    freq = profile.frequency.numpy()  # [n, L, E]
    n_layers = freq.shape[1]
    plan = LabelPermutations.cached(n, stats.exact_limit, stats.n_permutations, stats.seed)
    rows, cols = plan.rows, plan.cols
    s = _ranks(references["script"][rows, cols])
    g = _ranks(references["genealogy"][rows, cols])
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(g))):
        raise BabelmoeError(
            "script or genealogical distance is the same for every pair of languages",
            "profile languages of more than one script and more than one family",
        )
    r_sg = float(s @ g / len(s))
    if abs(r_sg) > 1 - 1e-9:
        raise BabelmoeError(
            "script and genealogical distance order the language pairs identically",
            "add languages that share a script across families or differ in script within one",
        )

    def distances(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[..., n, L, E] -> whole-model [..., n, n] and per-layer [..., L, n, n] distances."""
        flat = f.reshape(*f.shape[:-2], -1)
        by_layer = np.swapaxes(f, -3, -2)  # [..., L, n, E]
        return (
            as_distance(pairwise(flat, config.metric, config.kl_epsilon), config.metric),
            as_distance(pairwise(by_layer, config.metric, config.kl_epsilon), config.metric),
        )

    model_dist, layer_dist = distances(freq)
    scope_dists = [model_dist, *layer_dist]  # scope 0: the model, 1..L: the layers

    # Bootstrap: the partial r's of every scope per resample.
    boot: np.ndarray | None = None  # [B, 1 + L, 2] partial r (script, genealogy)
    boot_dist: np.ndarray | None = None  # [B, n, n] whole-model distance
    n_bootstrap = stats.n_bootstrap
    if distance_samples is not None:
        whole, per_layer = (np.asarray(x, dtype=np.float64) for x in distance_samples)
        tri = np.concatenate([whole[:, None], per_layer], axis=1)[..., rows, cols]
        _, _, ps, pg, _ = _partials(_ranks(tri), s, g)
        boot, boot_dist, n_bootstrap = np.stack([ps, pg], axis=-1), whole, whole.shape[0]
    elif stats.n_bootstrap > 0:
        logger.info("family vs script: bootstrap, %d resamples", stats.n_bootstrap)

        def statistic(f: np.ndarray) -> dict[str, np.ndarray]:  # f [B, n, L, E]
            whole, per_layer = distances(f)  # [B, n, n], [B, L, n, n]
            tri = np.concatenate([whole[:, None], per_layer], axis=1)[..., rows, cols]
            _, _, ps, pg, _ = _partials(_ranks(tri), s, g)  # [B, 1 + L]
            return {"partial": np.stack([ps, pg], axis=-1), "model": whole}

        articles = profile_articles(profile)
        paired = resolve_paired(stats.bootstrap_paired, articles)
        samples = run_bootstrap(
            profile.unit_counts.numpy(),
            profile.unit_tokens.numpy(),
            statistic,
            stats.n_bootstrap,
            stats.seed,
            config.batch_size,
            paired,
            articles=articles.index if paired and articles is not None else None,
        )
        boot, boot_dist = samples["partial"], samples["model"]

    # Tests: every scope's Mantel and partial Mantel statistics under every relabeling, in one
    # pass (see _null_statistics).
    x_all = np.stack([_ranks(d[rows, cols]) for d in scope_dists], axis=1)  # [P, 1 + L]
    # name -> [1 + L, N]: each scope's null contiguous
    nulls = {k: np.ascontiguousarray(v.T) for k, v in _null_statistics(plan, x_all, s, g).items()}
    mantel, partials = (
        {
            ref: [
                test_from_null(
                    nulls[ref + suffix][k], float(nulls[ref + suffix][k, 0]), "greater", plan.exact
                )
                for k in range(len(scope_dists))
            ]
            for ref in REFERENCES
        }
        for suffix in ("", "|")
    )
    scopes: list[ScopeResult] = []
    for k in range(len(scope_dists)):
        _, _, ps, pg, r2 = (float(v) for v in _partials(x_all[:, k], s, g))
        partial = {ref: partials[ref][k] for ref in REFERENCES}
        r_xs, r_xg = mantel["script"][k].statistic, mantel["genealogy"][k].statistic
        ci = {ref: (float("nan"), float("nan")) for ref in REFERENCES}
        diff_ci = (float("nan"), float("nan"))
        if boot is not None:
            ci = {ref: _interval(boot[:, k, j], stats.ci_level) for j, ref in enumerate(REFERENCES)}
            diff_ci = _interval(boot[:, k, 0] - boot[:, k, 1], stats.ci_level)
        scopes.append(
            ScopeResult(
                layer=None if k == 0 else k - 1,
                mantel={ref: mantel[ref][k] for ref in REFERENCES},
                partial=partial,
                partial_ci=ci,
                difference=ps - pg,
                difference_ci=diff_ci,
                r2=r2,
                unique={"script": r2 - r_xg**2, "genealogy": r2 - r_xs**2},
                shared=r_xs**2 + r_xg**2 - r2,
            )
        )
    model, layers = scopes[0], scopes[1:]
    for ref in REFERENCES:
        for layer, p in zip(layers, holm([x.partial[ref].p_value for x in layers]), strict=True):
            layer.p_holm[ref] = p
    contrasts = _contrasts(labels, model_dist, boot_dist, references, config)
    dropped = _leave_one_family_out(langs, model_dist, references)
    genus_tests: dict[str, TestResult] = {}
    genus_ranks = _ranks(category_distance(langs, "genus")[rows, cols])
    if np.isfinite(genus_ranks).all() and abs(float(s @ genus_ranks / len(s))) < 1 - 1e-9:
        by_genus = _null_statistics(plan, x_all[:, :1], s, genus_ranks)
        for ref, key in (("script", "script|"), ("genus", "genealogy|")):
            null = by_genus[key][:, 0]
            genus_tests[ref] = test_from_null(null, float(null[0]), "greater", plan.exact)
    logger.info(
        "family vs script: whole model partial r script %.3f, genealogy %.3f (%d layers)",
        model.partial["script"].statistic,
        model.partial["genealogy"].statistic,
        n_layers,
    )
    return ScriptGenealogyResult(
        labels=labels,
        references=references,
        reference_correlation=r_sg,
        model=model,
        layers=layers,
        contrasts=contrasts,
        leave_one_family_out=dropped,
        genus=genus_tests,
        n_bootstrap=n_bootstrap,
        notes=notes,
        distances=np.stack(scope_dists),
    )


def _null_statistics(
    plan: LabelPermutations, x: np.ndarray, s: np.ndarray, g: np.ndarray, chunk: int = 50_000
) -> dict[str, np.ndarray]:
    """Mantel r and partial r of every scope under every relabeling (identity first).

    ``x`` [P, K] holds the standardised activation ranks of K scopes over the P pairs; ``s`` and
    ``g`` the standardised reference ranks. Relabeling the languages of the activation matrix
    gives the same null distribution as relabeling both references together (the relabelings
    form a group), and the latter lets all K scopes share one pass; r(s, g) does not change
    under a joint relabeling. Returns ``script``, ``genealogy`` (Mantel r) and ``script|``,
    ``genealogy|`` (partial r, the other reference partialled out), each [N, K].
    """
    n_pairs = len(s)
    r_sg = float(s @ g / n_pairs)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("script", "genealogy")}
    for start in range(0, len(plan.pair_index), chunk):
        idx = plan.pair_index[start : start + chunk]  # [c, P]
        parts["script"].append(s[idx] @ x / n_pairs)
        parts["genealogy"].append(g[idx] @ x / n_pairs)
    r_s = np.concatenate(parts["script"])  # [N, K]
    r_g = np.concatenate(parts["genealogy"])
    with np.errstate(invalid="ignore", divide="ignore"):
        partial_s = (r_s - r_g * r_sg) / np.sqrt((1 - r_g**2) * (1 - r_sg**2))
        partial_g = (r_g - r_s * r_sg) / np.sqrt((1 - r_s**2) * (1 - r_sg**2))
    return {"script": r_s, "genealogy": r_g, "script|": partial_s, "genealogy|": partial_g}


def _leave_one_family_out(
    langs: Sequence[dict[str, Any]], dist: np.ndarray, references: dict[str, np.ndarray]
) -> dict[str, tuple[float, float]]:
    """Whole-model partial r (script, genealogy) with each family's languages left out, for the
    families with at least 2 languages (does one family carry the result?)."""
    families = [lang.get("family") for lang in langs]
    out = {}
    for family in sorted({f for f in families if f and families.count(f) >= 2}):
        keep = np.array([f != family for f in families])
        if keep.sum() < 4:
            continue
        rows, cols = np.triu_indices(int(keep.sum()), 1)
        sub = np.ix_(keep, keep)
        x = _ranks(dist[sub][rows, cols])
        s = _ranks(references["script"][sub][rows, cols])
        g = _ranks(references["genealogy"][sub][rows, cols])
        if not (np.isfinite(s).all() and np.isfinite(g).all() and np.isfinite(x).all()):
            continue
        _, _, ps, pg, _ = _partials(x, s, g)
        out[str(family)] = (float(ps), float(pg))
    return out


def _contrasts(
    labels: list[str],
    dist: np.ndarray,
    boot_dist: np.ndarray | None,
    references: dict[str, np.ndarray],
    config: ScriptGenealogyConfig,
) -> list[ContrastResult]:
    index = {label: i for i, label in enumerate(labels)}
    rows, cols = np.triu_indices(len(labels), 1)
    pairs = dist[rows, cols]
    out = []
    for a, b in config.contrasts:
        if a not in index or b not in index:
            continue
        i, j = index[a], index[b]
        value = float(dist[i, j])
        out.append(
            ContrastResult(
                a=a,
                b=b,
                distance=value,
                ci=_interval(
                    None if boot_dist is None else boot_dist[:, i, j], config.statistics.ci_level
                ),
                rank=float(np.mean(pairs < value)),
                genealogy=float(references["genealogy"][i, j]),
                script=float(references["script"][i, j]),
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# Output: summary, table rows, sentences


def _test(t: TestResult) -> dict[str, Any]:
    return {"r": t.statistic, "p_value": t.p_value, "n_permutations": t.n_permutations}


def scope_dict(scope: ScopeResult, alpha: float) -> dict[str, Any]:
    """JSON-ready view of one scope."""
    return {
        "layer": scope.layer,
        "mantel": {ref: _test(scope.mantel[ref]) for ref in REFERENCES},
        "partial": {
            ref: {
                **_test(scope.partial[ref]),
                "ci": list(scope.partial_ci[ref]),
                "p_holm": scope.p_holm.get(ref),
            }
            for ref in REFERENCES
        },
        "difference": scope.difference,
        "difference_ci": list(scope.difference_ci),
        "r2": scope.r2,
        "unique": dict(scope.unique),
        "shared": scope.shared,
        "verdict": scope.verdict(alpha),
    }


def summary(result: ScriptGenealogyResult, config: ScriptGenealogyConfig) -> dict[str, Any]:
    """The ``family_vs_script`` block of ``summary.json``, with its sentences."""
    stats = config.statistics
    layers = [scope_dict(x, stats.alpha) for x in result.layers]
    by_verdict = {
        ref: [x.layer for x in result.layers if x.follows(ref, stats.alpha)] for ref in REFERENCES
    }
    return {
        "metric": config.metric,
        "n_languages": len(result.labels),
        "n_pairs": len(result.labels) * (len(result.labels) - 1) // 2,
        "n_bootstrap": result.n_bootstrap,
        "ci_level": stats.ci_level,
        "alpha": stats.alpha,
        "reference_correlation": result.reference_correlation,
        "measures": measures_block(config.script_measure, config.genealogy_measure),
        "model": scope_dict(result.model, stats.alpha),
        "layers": layers,
        "layers_following": by_verdict,
        "contrasts": [vars(c) | {"ci": list(c.ci)} for c in result.contrasts],
        "with_genus": {ref: _test(t) for ref, t in result.genus.items()},
        "leave_one_family_out": {
            family: {"script": ps, "genealogy": pg}
            for family, (ps, pg) in result.leave_one_family_out.items()
        },
        "notes": result.notes,
        "findings": findings(result, config),
    }


def _f(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}" if np.isfinite(x) else "n/a"


def _p(x: float) -> str:
    return f"{x:.2g}" if np.isfinite(x) else "n/a"


def findings(result: ScriptGenealogyResult, config: ScriptGenealogyConfig) -> list[str]:
    """One sentence per finding, every number with its interval or p-value."""
    stats = config.statistics
    m, level = result.model, f"{stats.ci_level:.0%}"

    def part(scope: ScopeResult, ref: str) -> str:
        t, (lo, hi) = scope.partial[ref], scope.partial_ci[ref]
        interval = f"{level} text-bootstrap CI {_f(lo)} to {_f(hi)}"
        return f"{_f(t.statistic)} ({interval}, p = {_p(t.p_value)})"

    out = [
        f"Whole model, {len(result.labels)} languages: activation distance follows script with "
        f"genealogy held fixed, partial Mantel r = {part(m, 'script')}, and genealogy with "
        f"script held fixed, r = {part(m, 'genealogy')}; difference "
        f"{_f(m.difference)} ({level} CI {_f(m.difference_ci[0])} to {_f(m.difference_ci[1])}). "
        f"Together they explain R^2 = {_f(m.r2)} of the activation ranks: "
        f"{_f(m.unique['script'])} only script, {_f(m.unique['genealogy'])} only genealogy, "
        f"{_f(m.shared)} shared (script and genealogy distances correlate at "
        f"r = {_f(result.reference_correlation)})."
    ]
    follow = {
        ref: [x.layer for x in result.layers if x.follows(ref, stats.alpha)] for ref in REFERENCES
    }
    more = {
        "script": [x.layer for x in result.layers if x.difference_ci[0] > 0],
        "genealogy": [x.layer for x in result.layers if x.difference_ci[1] < 0],
    }
    n_layers = len(result.layers)
    if result.genus:
        out.insert(
            1,
            f"With genus (same or different) as the genealogical distance instead of the "
            f"lineage: partial r of script {_f(result.genus['script'].statistic)} "
            f"(p = {_p(result.genus['script'].p_value)}), of genus "
            f"{_f(result.genus['genus'].statistic)} (p = {_p(result.genus['genus'].p_value)}).",
        )
    if result.leave_one_family_out:
        values = np.array(list(result.leave_one_family_out.values()))  # [F, 2]
        out.insert(
            1,
            f"Leaving out one family at a time ({len(values)} families with 2 or more "
            f"languages), the whole-model partial r stays between {_f(values[:, 0].min())} and "
            f"{_f(values[:, 0].max())} for script and between {_f(values[:, 1].min())} and "
            f"{_f(values[:, 1].max())} for genealogy.",
        )
    out.append(
        f"Per layer (Holm-adjusted over {n_layers} layers, alpha = {stats.alpha}): "
        "script in "
        f"{len(follow['script'])} layers ({_layers(follow['script'])}), genealogy in "
        f"{len(follow['genealogy'])} ({_layers(follow['genealogy'])}); the bootstrap interval "
        f"of the difference (script minus genealogy) lies above 0 in layers "
        f"{_layers(more['script'])} and below 0 in {_layers(more['genealogy'])}."
    )
    for c in result.contrasts:
        out.append(
            f"{c.a} vs {c.b}: activation distance {c.distance:.3g} ({level} CI "
            f"{c.ci[0]:.3g} to {c.ci[1]:.3g}); closer than {1 - c.rank:.0%} of all pairs "
            f"(script distance {_f(c.script)}, genealogical {_f(c.genealogy)})."
        )
    if any(np.isfinite(c.ci[0]) and c.distance < c.ci[0] for c in result.contrasts):
        out.append(
            "Some distances lie below their bootstrap interval: resampling documents adds "
            "noise, which makes distances come out larger; read the intervals as spread."
        )
    return out


def _layers(layers: list[int | None]) -> str:
    return ", ".join(str(x) for x in layers) if layers else "none"


def layer_rows(result: ScriptGenealogyResult, alpha: float) -> list[dict[str, Any]]:
    """One row per (scope, reference): the CSV table ``family_vs_script``."""
    rows = []
    for scope in [result.model, *result.layers]:
        for ref in REFERENCES:
            t, lo_hi = scope.partial[ref], scope.partial_ci[ref]
            rows.append(
                {
                    "scope": "model" if scope.layer is None else "layer",
                    "layer": scope.layer,
                    "reference": ref,
                    "mantel_r": scope.mantel[ref].statistic,
                    "mantel_p": scope.mantel[ref].p_value,
                    "partial_r": t.statistic,
                    "partial_ci_low": lo_hi[0],
                    "partial_ci_high": lo_hi[1],
                    "partial_p": t.p_value,
                    "partial_p_holm": scope.p_holm.get(ref),
                    "unique_r2": scope.unique[ref],
                    "r2": scope.r2,
                    "n_permutations": t.n_permutations,
                    "follows": scope.follows(ref, alpha),
                    "verdict": scope.verdict(alpha),
                }
            )
    return rows
