"""Shared and language-specific experts against a null model that permutes language labels.

The within-layer null of :mod:`babelmoe.analysis.expert_null` asks whether the same experts are
frequent across languages more often than the layer's share of selections gives; an expert that
is frequent everywhere, whatever the text, passes it. This module asks about *language*: does an
expert's frequency depend on which language a document is in, beyond what the documents
themselves give?

Units and exchangeability. The profile keeps each language's counts per bootstrap unit (whole
documents; ``unit_counts`` [n, U, L, E], ``unit_tokens`` [n, U]). A *cell* is one non-empty
(language, unit). Under the null, "the expert's selections are set by the document's content,
not by its language", the cells of one article (the same content in every language of a
parallel corpus) are exchangeable across languages; cells of different articles are not (an
article about asylum and one about marriage differ whatever the language). So the permutation
shuffles the language labels of the cells *within each article* (``strata``): every language
keeps its number of cells, and the same articles, and only which language's version of an
article it gets changes. Without an article alignment (a non-parallel corpus) every cell is one
stratum: labels are shuffled over all cells, each language keeping its number of cells. A cell
carries its tokens along, so a language's token total moves a little between permutations
(its frequency stays counts / tokens).

Statistics, per permutation (``n_permutations`` draws; p-values (1 + #{null >= observed}) /
(1 + draws)):

- per expert (layer l, expert e), *language dependence*: the between-language dispersion of its
  frequency, H = sum_i t_i (f_i - f)^2 with f the pooled frequency (the Pearson chi-square of a
  languages x {selected, not} table times f (1 - f), which the permutation leaves fixed). Its
  permutation p-value tests "the expert's frequency does not depend on language"; p-values are
  adjusted over all L x E experts (Benjamini-Hochberg). ``dispersion_ratio`` = H over its null
  mean (1: as much variation across languages as random labels give).
- per (language i, l, e): P(f_i under the null >= observed f_i): is the expert more frequent in
  language i than random assignment of its articles' versions to languages gives.
- per layer: the number of shared experts (frequency >= ``shared_threshold`` in every language)
  and of specific experts (>= ``specific_high`` in one language, <= ``specific_low`` in all
  others) under every permutation: their null mean and P(null >= observed).

Reading: a shared expert whose language dependence is not significant is shared *because it is
frequent in every document regardless of language*; one whose dependence is significant is
shared but modulated by language. A threshold-specific expert is *confirmed* when its language
dependence is significant (adjusted) and its frequency in its language exceeds the null
(p < alpha). Note that the second p-value is computed for experts selected by a threshold on the
same frequency, so it is read as a description, not a test; the dispersion test is over all
experts and needs no selection.

Cost: one permutation gathers the cells' counts, O(cells x L x E); the draws go in batches as a
sparse (permutation) x dense (cells x experts) product.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy import sparse

from babelmoe.analysis.config import StatisticsConfig, check_thresholds
from babelmoe.errors import require, setting

logger = logging.getLogger(__name__)


@dataclass
class LabelNullConfig:
    """Thresholds (as ``AnalysisConfig``) and the draws of the language-label permutation."""

    shared_threshold: float = 0.05
    """Shared: frequency >= this in every language."""
    specific_high: float = 0.05
    """Specific to language i: frequency >= this in i ..."""
    specific_low: float = 0.01
    """... and <= this in every other language."""
    strata: str = "auto"
    """``article``: permute within articles; ``none``: over all cells; ``auto``: ``article``
    when the profile's units align across languages (a parallel corpus), else ``none``."""
    statistics: StatisticsConfig = field(default_factory=StatisticsConfig)
    """Random permutations of the language labels (``label_permutations``; 0: observed counts
    only), significance level (after Benjamini-Hochberg over experts for the dispersion test),
    seed of the permutations (``STATISTICS``)."""
    batch_size: int = 50
    """Permutations evaluated at once (memory ~ batch x languages x layers x experts x 4 B)."""

    STATISTICS: ClassVar[tuple[str, ...]] = ("label_permutations", "alpha", "seed")

    def __post_init__(self) -> None:
        check_thresholds(self.shared_threshold, self.specific_high, self.specific_low)
        require(
            self.strata in ("auto", "article", "none"),
            f"{setting('strata')} must be auto, article or none",
        )
        require(self.batch_size >= 1, f"{setting('batch_size')} must be >= 1")


@dataclass
class LabelNullResult:
    """Observed statistics beside their label-permutation nulls (module docstring)."""

    frequency: np.ndarray  # [n, L, E] observed
    dispersion_p: np.ndarray  # [L, E] P(null H >= observed H)
    dispersion_p_adjusted: np.ndarray  # [L, E] Benjamini-Hochberg over all experts
    dispersion_ratio: np.ndarray  # [L, E] observed H / null mean H
    language_p: np.ndarray  # [n, L, E] P(null f_i >= observed f_i)
    shared_mask: np.ndarray  # [L, E] bool
    specific_language: np.ndarray  # [L, E] int: the language an expert is specific to, else -1
    shared_null: np.ndarray  # [D, L] shared experts per layer in each permutation
    specific_null: np.ndarray  # [D, L]
    strata: str  # "article" or "none", as used
    n_permutations: int
    alpha: float

    @property
    def shared(self) -> np.ndarray:
        """[L] shared experts per layer."""
        return self.shared_mask.sum(axis=-1)

    @property
    def specific(self) -> np.ndarray:
        """[L] specific experts per layer."""
        return (self.specific_language >= 0).sum(axis=-1)

    @property
    def dependent(self) -> np.ndarray:
        """[L, E] bool: frequency depends on language (adjusted dispersion p < alpha)."""
        return self.dispersion_p_adjusted < self.alpha

    @property
    def shared_agnostic(self) -> np.ndarray:
        """[L] shared experts whose frequency does not depend on language (beyond the null)."""
        return (self.shared_mask & ~self.dependent).sum(axis=-1)

    @property
    def specific_confirmed(self) -> np.ndarray:
        """[L] specific experts with dependence and their language's frequency beyond the null."""
        layers, experts = np.nonzero(self.specific_language >= 0)
        langs = self.specific_language[layers, experts]
        ok = self.dependent[layers, experts] & (
            self.language_p[langs, layers, experts] < self.alpha
        )
        return np.bincount(layers[ok], minlength=self.shared_mask.shape[0])

    def null_mean(self, kind: str) -> np.ndarray:
        """[L] mean count of ``kind`` (shared, specific) over the permutations (NaN without)."""
        draws = getattr(self, f"{kind}_null")
        return draws.mean(axis=0) if draws.shape[0] else np.full(draws.shape[1], np.nan)

    def layer_p(self, kind: str) -> np.ndarray:
        """[L] P(null count >= observed count) per layer."""
        return _exceed_p(getattr(self, f"{kind}_null"), getattr(self, kind))

    def total_p(self, kind: str) -> float:
        """P(null count summed over layers >= observed sum)."""
        draws = getattr(self, f"{kind}_null").sum(axis=1)
        return float(_exceed_p(draws[:, None], np.array([getattr(self, kind).sum()]))[0])


def _exceed_p(null: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """[D, K] null draws, [K] observed -> [K] (1 + #{null >= observed}) / (1 + D)."""
    if null.shape[0] == 0:
        return np.full(np.shape(observed), np.nan)
    return ((null >= observed).sum(axis=0) + 1) / (null.shape[0] + 1)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values of any shape (NaN stays NaN)."""
    flat = np.asarray(p, dtype=np.float64).ravel()
    out = np.full(flat.shape, np.nan)
    ok = ~np.isnan(flat)
    values = flat[ok]
    m = values.size
    if m:
        order = np.argsort(values)
        scaled = values[order] * m / np.arange(1, m + 1)
        adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
        result = np.empty(m)
        result[order] = np.minimum(adjusted, 1.0)
        out[ok] = result
    return out.reshape(np.shape(p))


def specific_language(freq: np.ndarray, high: float, low: float) -> np.ndarray:
    """[..., n, L, E] -> [..., L, E]: the one language an expert is specific to, else -1."""
    not_low = freq > low
    is_specific = (not_low.sum(axis=-3) == 1) & ((freq >= high).sum(axis=-3) == 1)
    which = np.argmax(not_low, axis=-3)
    return np.where(is_specific, which, -1)


def permutation_strata(
    unit_tokens: np.ndarray, articles: np.ndarray | None, strata: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """The cells and their strata: (lang [C], unit [C], stratum [C], strata used).

    Cells are the non-empty (language, unit) pairs, sorted by stratum; ``articles`` [n, U] gives
    each unit's article (-1: none), see ``analysis.units``. A cell without an article is a
    stratum of its own (it never moves)."""
    nonempty = np.asarray(unit_tokens) > 0
    lang, unit = np.nonzero(nonempty)
    used = strata
    if strata == "auto":
        used = "article" if articles is not None else "none"
    if used == "article" and articles is None:
        used = "none"
    if used == "article":
        art = np.asarray(articles)[lang, unit]
        lonely = art < 0
        stratum = np.where(lonely, art.max(initial=0) + 1 + np.arange(art.size), art)
    else:
        stratum = np.zeros(lang.size, dtype=np.int64)
    order = np.lexsort((unit, lang, stratum))
    return lang[order], unit[order], stratum[order], used


def draw_permutations(rng: np.random.Generator, stratum: np.ndarray, size: int) -> np.ndarray:
    """[size, C]: cell indices; slot c (language lang[c]) receives cell perm[c], which lies in
    the same stratum (``stratum`` sorted, so the strata are contiguous blocks)."""
    _, block = np.unique(stratum, return_inverse=True)
    keys = block[None, :] * 2.0 + rng.random((size, stratum.size))  # [size, C], in [2b, 2b+1)
    return np.argsort(keys, axis=1, kind="stable")


def label_null(
    unit_counts: np.ndarray,
    unit_tokens: np.ndarray,
    articles: np.ndarray | None = None,
    config: LabelNullConfig | None = None,
) -> LabelNullResult:
    """Test shared and specific experts against permuted language labels (module docstring).

    Args:
        unit_counts: [n, U, L, E] counts per language and unit.
        unit_tokens: [n, U] tokens per language and unit.
        articles: [n, U] article index of every unit (-1: none), or None.
    """
    config = config or LabelNullConfig()
    unit_counts = np.asarray(unit_counts)
    unit_tokens = np.asarray(unit_tokens)
    n, _, n_layers, n_experts = unit_counts.shape
    k = n_layers * n_experts
    lang, unit, stratum, used = permutation_strata(unit_tokens, articles, config.strata)
    cells = unit_counts[lang, unit].reshape(lang.size, k).astype(np.float32)  # [C, K]
    cell_tokens = unit_tokens[lang, unit].astype(np.float64)  # [C]

    counts = unit_counts.sum(axis=1).reshape(n, k).astype(np.float64)  # [n, K]
    tokens = unit_tokens.sum(axis=1).astype(np.float64)  # [n]
    freq = counts / np.maximum(tokens, 1.0)[:, None]  # [n, K]
    g_obs = (counts**2 / np.maximum(tokens, 1.0)[:, None]).sum(axis=0)  # [K]
    pooled = counts.sum(axis=0) ** 2 / max(tokens.sum(), 1.0)  # [K], invariant
    freq3 = freq.reshape(n, n_layers, n_experts)
    shared_mask = (freq3 >= config.shared_threshold).all(axis=0)
    spec = specific_language(freq3, config.specific_high, config.specific_low)

    rng = np.random.default_rng(config.statistics.seed)
    exceed_g = np.zeros(k, dtype=np.int64)
    exceed_f = np.zeros((n, k), dtype=np.int64)
    sum_h = np.zeros(k, dtype=np.float64)
    shared_null, specific_null = [], []
    # ties within float32 rounding count as ties (the identity permutation must tie)
    tol_g = 1e-5 * np.maximum(np.abs(g_obs), 1e-12)
    f_floor = (freq * (1.0 - 1e-5) - 1e-12).astype(np.float32)
    done = 0
    while done < config.statistics.label_permutations:
        size = min(config.batch_size, config.statistics.label_permutations - done)
        perm = draw_permutations(rng, stratum, size)  # [B, C]
        rows = (np.arange(size)[:, None] * n + lang[None, :]).ravel()
        assign = sparse.csr_matrix(
            (np.ones(rows.size, dtype=np.float32), (rows, perm.ravel())),
            shape=(size * n, lang.size),
        )
        c_star = np.asarray(assign @ cells).reshape(size, n, k)  # [B, n, K]
        t_star = np.asarray(assign @ cell_tokens).reshape(size, n)  # [B, n]
        inv_t = (1.0 / np.maximum(t_star, 1.0)).astype(np.float32)[..., None]
        f_star = c_star * inv_t  # [B, n, K]
        g_star = np.einsum("bnk,bnk->bk", c_star, f_star, dtype=np.float64)  # sum c^2 / t
        exceed_g += (g_star >= g_obs - tol_g).sum(axis=0)
        sum_h += (g_star - pooled).sum(axis=0)
        exceed_f += (f_star >= f_floor).sum(axis=0)
        f4 = f_star.reshape(size, n, n_layers, n_experts)
        shared_null.append((f4 >= config.shared_threshold).all(axis=1).sum(axis=-1))
        spec_star = specific_language(f4, config.specific_high, config.specific_low)
        specific_null.append((spec_star >= 0).sum(axis=-1))
        done += size
    draws = config.statistics.label_permutations
    if draws:
        dispersion_p = ((exceed_g + 1) / (draws + 1)).reshape(n_layers, n_experts)
        language_p = ((exceed_f + 1) / (draws + 1)).reshape(n, n_layers, n_experts)
        null_h = sum_h / draws
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(null_h > 0, (g_obs - pooled) / null_h, np.nan)
    else:
        dispersion_p = np.full((n_layers, n_experts), np.nan)
        language_p = np.full((n, n_layers, n_experts), np.nan)
        ratio = np.full(k, np.nan)
    empty = np.zeros((0, n_layers), dtype=np.int64)
    logger.info(
        "language-label null: %d permutations of %d cells (%s strata), %d x %d experts",
        draws,
        lang.size,
        used,
        n_layers,
        n_experts,
    )
    return LabelNullResult(
        frequency=freq3,
        dispersion_p=dispersion_p,
        dispersion_p_adjusted=benjamini_hochberg(dispersion_p),
        dispersion_ratio=ratio.reshape(n_layers, n_experts),
        language_p=language_p,
        shared_mask=shared_mask,
        specific_language=spec,
        shared_null=np.concatenate(shared_null) if shared_null else empty,
        specific_null=np.concatenate(specific_null) if specific_null else empty,
        strata=used,
        n_permutations=draws,
        alpha=config.statistics.alpha,
    )


def layer_rows(result: LabelNullResult) -> list[dict[str, Any]]:
    """One row per (layer, kind): observed count, null mean, p, and the split by dependence."""
    rows = []
    dependent = result.dependent.sum(axis=-1)
    for kind in ("shared", "specific"):
        observed = getattr(result, kind)
        mean = result.null_mean(kind)
        p = result.layer_p(kind)
        split = result.shared_agnostic if kind == "shared" else result.specific_confirmed
        for layer in range(observed.size):
            rows.append(
                {
                    "layer": layer,
                    "kind": kind,
                    "observed": int(observed[layer]),
                    "label_null_mean": float(mean[layer]),
                    "p_value": float(p[layer]),
                    # shared: regardless of language; specific: confirmed by the label null
                    "agnostic_or_confirmed": int(split[layer]),
                    "language_dependent_experts": int(dependent[layer]),
                }
            )
    return rows


def expert_rows(result: LabelNullResult, codes: list[str]) -> list[dict[str, Any]]:
    """One row per shared or specific expert: its frequencies and the label-null p-values."""
    rows = []
    for kind, mask in (("shared", result.shared_mask), ("specific", result.specific_language >= 0)):
        for layer, expert in zip(*np.nonzero(mask), strict=True):
            lang = int(result.specific_language[layer, expert])
            freq = result.frequency[:, layer, expert]
            rows.append(
                {
                    "layer": int(layer),
                    "expert": int(expert),
                    "kind": kind,
                    "language": codes[lang] if lang >= 0 else "",
                    "frequency_min": float(freq.min()),
                    "frequency_max": float(freq.max()),
                    "dispersion_ratio": float(result.dispersion_ratio[layer, expert]),
                    "dispersion_p": float(result.dispersion_p[layer, expert]),
                    "dispersion_p_adjusted": float(result.dispersion_p_adjusted[layer, expert]),
                    "language_p": float(result.language_p[lang, layer, expert])
                    if lang >= 0
                    else float("nan"),
                    "language_dependent": bool(result.dependent[layer, expert]),
                }
            )
    return rows
