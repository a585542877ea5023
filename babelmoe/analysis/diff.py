"""Compare two profiles of one architecture (base vs instruction-tuned, or two corpora).

Both profiles must have the same number of layers and experts; the comparison uses the languages
they share, in the first profile's order. Per layer and language: mean |delta| of frequencies
(delta = B - A) and the Pearson correlation of A's and B's frequencies over the experts; "all"
pools the languages (mean of |delta|; correlation over every language's experts).

The bootstrap resamples each profile's units independently. Mean |delta| is compared with its
noise floor, what sampling noise alone produces (see ``_bootstrap``), which gives a p-value for
"no change in this layer"; the correlation gets a percentile interval (its sampling spread:
resampling lowers correlations a little). An expert "changed" when the language-mean delta
exceeds ``z_threshold`` bootstrap standard errors; experts "gained" or "lost" cross the shared
threshold.

Expert ids only match when both profiles used the same partition: with different partitions
(e.g. k-means run on each model) only the per-layer summaries and the language geometry are
comparable, and the result says so in ``notes``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from babelmoe.analysis.config import DiffConfig
from babelmoe.analysis.experts import shared_mask
from babelmoe.analysis.stats.bootstrap import percentile_interval, resampled_frequency, unit_weights
from babelmoe.analysis.stats.metrics import as_distance, pairwise
from babelmoe.analysis.stats.permutation import LabelPermutations, TestResult, mantel
from babelmoe.errors import BabelmoeError
from babelmoe.profile.artifact import ProfileData

logger = logging.getLogger(__name__)


@dataclass
class DiffResult:
    """Arrays over the common languages (n), layers (L) and experts (E)."""

    codes: list[str]
    freq_a: np.ndarray  # [n, L, E]
    freq_b: np.ndarray  # [n, L, E]
    mean_abs: np.ndarray  # [n + 1, L]; last row pools the languages
    noise_floor: np.ndarray  # [n + 1, L] mean |delta| that sampling noise alone gives
    noise_p: np.ndarray  # [n + 1, L] share of noise-only values >= mean_abs
    correlation: np.ndarray  # [n + 1, L]
    correlation_ci: np.ndarray  # [2, n + 1, L]
    pooled_delta: np.ndarray  # [L, E] mean over languages of B - A
    pooled_se: np.ndarray  # [L, E] bootstrap standard error of pooled_delta
    changed: np.ndarray  # [L, E] bool
    shared_a: np.ndarray  # [L, E] bool
    shared_b: np.ndarray  # [L, E] bool
    distance_a: np.ndarray  # [n, n]
    distance_b: np.ndarray  # [n, n]
    geometry: TestResult | None  # Mantel of distance_a vs distance_b
    same_partition: bool
    notes: list[str] = field(default_factory=list)

    @property
    def delta(self) -> np.ndarray:
        return self.freq_b - self.freq_a


def align_profiles(
    a: ProfileData, b: ProfileData, name_a: str = "A", name_b: str = "B"
) -> tuple[list[int], list[int], list[str]]:
    """Indices into a and b of the shared languages (a's order); refuses other shapes."""
    if (a.n_layers, a.n_experts) != (b.n_layers, b.n_experts):
        raise BabelmoeError(
            f"the profiles differ in shape: {name_a} has {a.n_layers} layers x {a.n_experts} "
            f"experts, {name_b} has {b.n_layers} layers x {b.n_experts} experts",
            "compare two profiles of one architecture split into the same number of experts",
        )
    common = [c for c in a.codes if c in b.codes]
    if not common:
        raise BabelmoeError(
            f"the profiles share no language: {name_a} has {', '.join(a.codes)}; "
            f"{name_b} has {', '.join(b.codes)}",
            "profile both on the same languages",
        )
    return [a.index(c) for c in common], [b.index(c) for c in common], common


def _rowwise_corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis (NaN for constant rows)."""
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(-1) / np.sqrt((x * x).sum(-1) * (y * y).sum(-1))


def _layer_stats(fa: np.ndarray, fb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[..., n, L, E] pair -> mean |delta| and correlation, each [..., n + 1, L]."""
    abs_delta = np.abs(fb - fa).mean(axis=-1)  # [..., n, L]
    mean_abs = np.concatenate([abs_delta, abs_delta.mean(axis=-2, keepdims=True)], axis=-2)
    corr = _rowwise_corr(fa, fb)  # [..., n, L]
    pooled_a = np.swapaxes(fa, -3, -2).reshape(*fa.shape[:-3], fa.shape[-2], -1)  # [..., L, n*E]
    pooled_b = np.swapaxes(fb, -3, -2).reshape(*fb.shape[:-3], fb.shape[-2], -1)
    pooled = _rowwise_corr(pooled_a, pooled_b)[..., None, :]
    return mean_abs, np.concatenate([corr, pooled], axis=-2)


def diff_profiles(a: ProfileData, b: ProfileData, config: DiffConfig) -> DiffResult:
    """Per-layer change from profile ``a`` to profile ``b`` (see the module docstring)."""
    ia, ib, codes = align_profiles(a, b)
    notes = []
    if len(codes) < max(len(a.codes), len(b.codes)):
        notes.append(f"compared on the {len(codes)} shared languages: {', '.join(codes)}")
    same_partition = a.meta.get("partition_sha256") == b.meta.get("partition_sha256")
    if not same_partition:
        notes.append(
            "the profiles used different partitions: expert ids do not correspond, "
            "so only per-layer summaries and the language geometry are comparable"
        )
        logger.warning(notes[-1])
    fa, fb = a.frequency.numpy()[ia], b.frequency.numpy()[ib]
    mean_abs, corr = _layer_stats(fa, fb)
    boot = _bootstrap(a, b, ia, ib, fa, fb, config)
    pooled_delta = (fb - fa).mean(axis=0)
    with np.errstate(invalid="ignore"):
        changed = np.abs(pooled_delta) > config.z_threshold * boot["se"]

    dist_a = as_distance(
        pairwise(fa.reshape(len(codes), -1), config.primary_metric, config.kl_epsilon),
        config.primary_metric,
    )
    dist_b = as_distance(
        pairwise(fb.reshape(len(codes), -1), config.primary_metric, config.kl_epsilon),
        config.primary_metric,
    )
    geometry = None
    if len(codes) >= 4:
        plan = LabelPermutations.cached(
            len(codes),
            config.statistics.exact_limit,
            config.statistics.n_permutations,
            config.statistics.seed,
        )
        geometry = mantel(plan, dist_a, dist_b)
    else:
        notes.append("language geometry not tested: needs at least 4 shared languages")
    return DiffResult(
        codes=codes,
        freq_a=fa,
        freq_b=fb,
        mean_abs=mean_abs,
        noise_floor=boot["noise_floor"],
        noise_p=boot["noise_p"],
        correlation=corr,
        correlation_ci=boot["corr_ci"],
        pooled_delta=pooled_delta,
        pooled_se=boot["se"],
        changed=changed,
        shared_a=shared_mask(fa, config.shared_threshold),
        shared_b=shared_mask(fb, config.shared_threshold),
        distance_a=dist_a,
        distance_b=dist_b,
        geometry=geometry,
        same_partition=same_partition,
        notes=notes,
    )


def _inflation(unit_tokens: np.ndarray) -> np.ndarray:
    """[n] sqrt(m / (m - 1)) for m non-empty units per language (1 when m < 2)."""
    m = (unit_tokens > 0).sum(axis=1).astype(np.float64)
    return np.sqrt(np.where(m > 1, m / np.maximum(m - 1, 1), 1.0))


def _bootstrap(
    a: ProfileData,
    b: ProfileData,
    ia: list[int],
    ib: list[int],
    fa: np.ndarray,
    fb: np.ndarray,
    config: DiffConfig,
) -> dict[str, np.ndarray]:
    """Resample each profile's units independently (same seed, same draws for every metric).

    noise: |(A* - A) - (B* - B)| is what the difference looks like when only sampling noise
    moves it, so its mean over experts is the noise floor of mean |delta|, and the share of
    resamples reaching the observed mean |delta| is a p-value for "no change in this layer".
    """
    stats = config.statistics
    n_boot, n, n_layers = stats.n_bootstrap, len(ia), fa.shape[1]
    nan = np.full((n + 1, n_layers), np.nan)
    if n_boot == 0:
        return {
            "noise_floor": nan,
            "noise_p": nan,
            "corr_ci": np.stack([nan, nan]),
            "se": np.full(fa.shape[1:], np.nan),
        }
    rng = np.random.default_rng(stats.seed)
    ua, ta = a.unit_counts.numpy()[ia].astype(np.float64), a.unit_tokens.numpy()[ia] * 1.0
    ub, tb = b.unit_counts.numpy()[ib].astype(np.float64), b.unit_tokens.numpy()[ib] * 1.0
    # A resample of m units has (m - 1) / m of the variance of the data: undo that shrinkage.
    inflate_a, inflate_b = (_inflation(t)[:, None, None] for t in (ta, tb))
    noise, corrs = [], []
    total_sq = np.zeros(fa.shape[1:])
    for start in range(0, n_boot, config.batch_size):
        batch = min(config.batch_size, n_boot - start)
        ra = resampled_frequency(ua, ta, unit_weights(rng, ta, batch, False))
        rb = resampled_frequency(ub, tb, unit_weights(rng, tb, batch, False))
        dev_a, dev_b = (ra - fa) * inflate_a, (rb - fb) * inflate_b
        wobble = np.abs(dev_a - dev_b).mean(axis=-1)  # [B, n, L]
        noise.append(np.concatenate([wobble, wobble.mean(axis=1, keepdims=True)], axis=1))
        corrs.append(_layer_stats(ra, rb)[1])
        pooled = (dev_b - dev_a).mean(axis=1)  # [B, L, E] deviation of the pooled delta
        total_sq += (pooled**2).sum(axis=0)
    null = np.concatenate(noise)  # [B, n + 1, L]
    observed = _layer_stats(fa, fb)[0]
    return {
        "noise_floor": null.mean(axis=0),
        "noise_p": (1.0 + (null >= observed - 1e-15).sum(axis=0)) / (n_boot + 1.0),
        "corr_ci": percentile_interval(np.concatenate(corrs), stats.ci_level),
        "se": np.sqrt(total_sq / n_boot),  # root mean square deviation of the pooled delta
    }
