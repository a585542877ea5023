"""Shared and language-specific experts: more than the layer's share of selections?

This null does not ask about language: it shuffles which expert is which within a layer, so an
expert that is frequent in every document, whatever the language, counts as "shared beyond
chance". It is kept under the name "more than the layer's share of selections"; the null that
asks about language permutes language labels over documents (:mod:`babelmoe.analysis.label_null`).

The raw count of shared experts in a layer (frequency >= ``threshold`` in every language) grows
with how many of the layer's experts are frequent in each language at all: a layer that receives
a large share of the global top-10% selections has many frequent experts in every language, and
so many that are frequent in all of them by coincidence. The question "are experts *shared* in
layer l" is whether the same experts are frequent across languages more often than chance.

Null model: within each layer, each language's frequencies are permuted over the layer's experts,
independently per language. This keeps, per language and layer, the whole set of frequencies
(so the layer's share of the language's selections and its number of frequent experts) and
destroys only which expert they belong to, i.e. the alignment across languages that "shared"
and "specific" are about.

Under it the expectations are exact: with ``k[i, l]`` the number of experts of layer l that
reach ``threshold`` in language i, E[shared_l] = E * prod_i (k[i, l] / E); with ``h[i, l]`` the
experts >= ``high`` in language i and ``o[j, l]`` those <= ``low`` in language j, E[specific_il]
= E * h[i, l] / E * prod_{j != i} (o[j, l] / E). Monte Carlo draws of the null (``n_draws``)
give one-sided p-values, P(null count >= observed), with the usual +1 correction. The draws do
not shuffle experts one by one: only counts matter, so each draw walks the languages of a layer
in turn and moves whole groups of experts between states with hypergeometric draws (shared:
"frequent in every language so far"; specific: "low in every language so far" and "high in
exactly one, low in the others so far"), which has exactly the distribution of the permutation
null at a cost independent of the number of experts.

Reported per layer: the raw count, the expected count, observed / expected, the excess
(observed - expected), and the p-value; the layer where the raw count peaks and the layer where
the excess peaks, and whether they agree. A layer's *share of selections* is the sum of its
frequencies over the sum over all layers (per language, averaged over languages).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy.stats import spearmanr

from babelmoe.analysis import experts as ex
from babelmoe.analysis.config import StatisticsConfig, check_thresholds, config_record
from babelmoe.errors import require, setting

logger = logging.getLogger(__name__)


@dataclass
class ExpertNullConfig:
    """Thresholds (as ``AnalysisConfig``) and the Monte Carlo draws of the null model."""

    shared_threshold: float = 0.05
    """Shared: frequency >= this in every language."""
    specific_high: float = 0.05
    """Specific to language i: frequency >= this in i ..."""
    specific_low: float = 0.01
    """... and <= this in every other language."""
    n_draws: int = 1000
    """Monte Carlo draws of the null model for the p-values (0: expectations only)."""
    statistics: StatisticsConfig = field(default_factory=StatisticsConfig)
    """Significance level of the sentences, seed of the draws (``STATISTICS``)."""

    STATISTICS: ClassVar[tuple[str, ...]] = ("alpha", "seed")

    def __post_init__(self) -> None:
        check_thresholds(self.shared_threshold, self.specific_high, self.specific_low)
        require(self.n_draws >= 0, f"{setting('n_draws')} must be >= 0")


@dataclass
class ExpertNullResult:
    """Per layer: observed and expected counts, p-values, and the layer's share of selections."""

    shared: np.ndarray  # [L] observed shared experts
    shared_expected: np.ndarray  # [L]
    shared_p: np.ndarray  # [L] P(null >= observed); NaN without draws
    specific: np.ndarray  # [L] observed specific experts, summed over languages
    specific_expected: np.ndarray  # [L]
    specific_p: np.ndarray  # [L]
    selection_share: np.ndarray  # [L] mean over languages of the layer's share of selections
    n_draws: int

    @property
    def shared_excess(self) -> np.ndarray:
        return self.shared - self.shared_expected

    @property
    def specific_excess(self) -> np.ndarray:
        return self.specific - self.specific_expected


def expected_shared(freq: np.ndarray, threshold: float) -> np.ndarray:
    """[n, L, E] -> [L] expected shared experts under the within-layer permutation null."""
    n_experts = freq.shape[-1]
    rate = (freq >= threshold).mean(axis=-1)  # [n, L] k / E
    return n_experts * rate.prod(axis=0)


def expected_specific(freq: np.ndarray, high: float, low: float) -> np.ndarray:
    """[n, L, E] -> [n, L] expected experts specific to each language under the null."""
    n_experts = freq.shape[-1]
    hi = (freq >= high).mean(axis=-1)  # [n, L]
    lo = (freq <= low).mean(axis=-1)  # [n, L]
    n = freq.shape[0]
    out = np.empty_like(hi)
    for i in range(n):
        others = np.delete(lo, i, axis=0).prod(axis=0)
        out[i] = n_experts * hi[i] * others
    return out


def null_draws(
    freq: np.ndarray, config: ExpertNullConfig, rng: np.random.Generator, n_draws: int
) -> tuple[np.ndarray, np.ndarray]:
    """[n, L, E] -> ([D, L] shared, [D, L] specific) counts in ``n_draws`` draws of the null.

    Per layer, the languages are taken in turn; a random permutation of language j's row puts
    its k_j frequent experts (h_j high, o_j low, the rest middling) on uniformly random slots,
    so the number landing on a set of s slots is hypergeometric, and the sets stay uniformly
    random given their sizes. States (per draw): ``s`` slots frequent in every language so far;
    ``a`` slots low in every language so far; ``b`` slots high in exactly one language and low
    in the others so far.
    """
    n, n_layers, n_experts = freq.shape
    shared = np.empty((n_draws, n_layers), dtype=np.int64)
    specific = np.empty((n_draws, n_layers), dtype=np.int64)
    frequent = (freq >= config.shared_threshold).sum(axis=-1)  # [n, L]
    high = (freq >= config.specific_high).sum(axis=-1)
    low = (freq <= config.specific_low).sum(axis=-1)
    for layer in range(n_layers):
        s = np.full(n_draws, n_experts, dtype=np.int64)
        a = np.full(n_draws, n_experts, dtype=np.int64)
        b = np.zeros(n_draws, dtype=np.int64)
        for j in range(n):
            k, h, o = int(frequent[j, layer]), int(high[j, layer]), int(low[j, layer])
            m = n_experts - h - o  # middling: neither high nor low
            s = _hyper(rng, k, n_experts - k, s)
            # a-slots: how many get a high expert, then how many of the rest a low one
            hi_a = _hyper(rng, h, n_experts - h, a)
            lo_a = _hyper(rng, o, m, a - hi_a)
            # b-slots (outside the a-slots): how many get one of the remaining low experts
            lo_b = _hyper(rng, o - lo_a, (n_experts - a) - (o - lo_a), b)
            a, b = lo_a, lo_b + hi_a
        shared[:, layer] = s
        specific[:, layer] = b
    return shared, specific


def _hyper(
    rng: np.random.Generator, good: int | np.ndarray, bad: int | np.ndarray, draws: np.ndarray
) -> np.ndarray:
    """Hypergeometric draws that allow empty urns and zero draws (numpy refuses ngood+nbad=0)."""
    good = np.broadcast_to(np.asarray(good, dtype=np.int64), draws.shape)
    bad = np.broadcast_to(np.asarray(bad, dtype=np.int64), draws.shape)
    out = np.zeros(draws.shape, dtype=np.int64)
    ok = (draws > 0) & (good > 0)
    full = ok & (bad <= 0)  # only good balls left: every draw is good
    out[full] = draws[full]
    mixed = ok & ~full
    if mixed.any():
        out[mixed] = rng.hypergeometric(good[mixed], bad[mixed], draws[mixed])
    return out


def expert_null(freq: np.ndarray, config: ExpertNullConfig | None = None) -> ExpertNullResult:
    """Observed shared/specific counts per layer beside the null model's (module docstring).

    Args:
        freq: [n, L, E] frequencies (share of each language's tokens selecting each expert).
    """
    config = config or ExpertNullConfig()
    freq = np.asarray(freq, dtype=np.float64)
    shared = ex.shared_mask(freq, config.shared_threshold).sum(axis=-1).astype(np.float64)
    specific = _specific_counts(freq, config).astype(np.float64)  # [L]
    n_layers = freq.shape[1]
    if config.n_draws:
        rng = np.random.default_rng(config.statistics.seed)
        null_shared, null_specific = null_draws(freq, config, rng, config.n_draws)
        shared_p = ((null_shared >= shared).sum(axis=0) + 1) / (config.n_draws + 1)
        specific_p = ((null_specific >= specific).sum(axis=0) + 1) / (config.n_draws + 1)
    else:
        shared_p = specific_p = np.full(n_layers, np.nan)
    mass = freq.sum(axis=-1)  # [n, L]
    share = (mass / np.maximum(mass.sum(axis=-1, keepdims=True), 1e-300)).mean(axis=0)
    return ExpertNullResult(
        shared=shared,
        shared_expected=expected_shared(freq, config.shared_threshold),
        shared_p=shared_p,
        specific=specific,
        specific_expected=expected_specific(freq, config.specific_high, config.specific_low).sum(0),
        specific_p=specific_p,
        selection_share=share,
        n_draws=config.n_draws,
    )


def _specific_counts(freq: np.ndarray, config: ExpertNullConfig) -> np.ndarray:
    """[n, L, E] -> [L] experts specific to some language (high in one, low in all others).

    Since high > low, an expert is specific exactly when one language is not low and that one
    is high: O(n L E), unlike the per-language mask.
    """
    not_low = (freq > config.specific_low).sum(axis=0)  # [L, E]
    high = (freq >= config.specific_high).sum(axis=0)
    return ((not_low == 1) & (high == 1)).sum(axis=-1)


def _peak(values: np.ndarray) -> int | None:
    return int(np.argmax(values)) if values.size and np.any(values > 0) else None


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def summary(result: ExpertNullResult, config: ExpertNullConfig) -> dict[str, Any]:
    """The ``expert_null`` block of ``summary.json`` with its sentences."""
    out: dict[str, Any] = {"n_draws": result.n_draws, "config": config_record(config)}
    for kind in ("shared", "specific"):
        observed = getattr(result, kind)
        expected = getattr(result, f"{kind}_expected")
        excess = observed - expected
        out[kind] = {
            "observed": observed.tolist(),
            "expected": expected.tolist(),
            "excess": excess.tolist(),
            "p_value": getattr(result, f"{kind}_p").tolist(),
            "peak_layer_observed": _peak(observed),
            "peak_layer_expected": _peak(expected),
            "peak_layer_excess": _peak(excess),
            "spearman_observed_vs_selection_share": _spearman(observed, result.selection_share),
            "spearman_observed_vs_expected": _spearman(observed, expected),
        }
    out["selection_share"] = result.selection_share.tolist()
    out["findings"] = findings(result, config)
    return out


def findings(result: ExpertNullResult, config: ExpertNullConfig) -> list[str]:
    """Sentences: does the raw peak survive the null model?"""
    texts = []
    for kind, what in (("shared", "Shared"), ("specific", "Language-specific")):
        observed = getattr(result, kind)
        expected = getattr(result, f"{kind}_expected")
        p = getattr(result, f"{kind}_p")
        peak_raw, peak_excess = _peak(observed), _peak(observed - expected)
        if peak_raw is None:
            texts.append(f"{what} experts: none in any layer.")
            continue
        above = [
            int(layer)
            for layer in np.flatnonzero((p < config.statistics.alpha) & (observed > expected))
        ]
        rho = _spearman(observed, result.selection_share)
        text = (
            f"{what} experts peak in layer {peak_raw} ({int(observed[peak_raw])}; "
            f"{expected[peak_raw]:.3g} expected if experts were matched across languages at "
            f"random within each layer). Across layers the raw count follows the layer's share "
            f"of selections (Spearman {rho:.2f}). More than the layer's share of selections "
            f"gives (p < {config.statistics.alpha}, {result.n_draws} draws; a null that does not "
            "ask about "
            f"language) in {len(above)} of {observed.size} layers"
        )
        survives = peak_excess == peak_raw and p[peak_raw] < config.statistics.alpha
        if peak_excess is None:
            text += "; no layer has more than the null expects: the raw peak does not survive"
        elif survives:
            text += "; the excess over the null peaks in the same layer: the peak survives"
        else:
            text += (
                f"; at the raw peak {int(observed[peak_raw])} observed vs "
                f"{expected[peak_raw]:.3g} expected (p = {p[peak_raw]:.2g}), while the excess "
                f"over the null peaks in layer {peak_excess} "
                f"({observed[peak_excess] - expected[peak_excess]:.3g} more than expected, "
                f"p = {p[peak_excess]:.2g}): the raw peak does not survive as a peak"
            )
        texts.append(text + ".")
    return texts


def layer_rows(result: ExpertNullResult) -> list[dict[str, Any]]:
    """One row per (layer, kind): the CSV table ``experts_null``."""
    rows = []
    for layer in range(result.shared.size):
        for kind in ("shared", "specific"):
            observed = float(getattr(result, kind)[layer])
            expected = float(getattr(result, f"{kind}_expected")[layer])
            rows.append(
                {
                    "layer": layer,
                    "kind": kind,
                    "observed": observed,
                    "expected": expected,
                    "ratio": observed / expected if expected > 0 else float("nan"),
                    "excess": observed - expected,
                    "p_value": float(getattr(result, f"{kind}_p")[layer]),
                    "selection_share": float(result.selection_share[layer]),
                }
            )
    return rows
