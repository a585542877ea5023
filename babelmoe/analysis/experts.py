"""Shared and language-specific experts from frequencies [..., n, L, E] (n languages).

- Shared: frequency >= ``threshold`` in every language (the paper's rule, threshold 0.05).
- Specific (threshold rule): frequency >= ``high`` in language i and <= ``low`` in every other
  language; for a group G: min over G >= ``high`` and max over the rest <= ``low``.
- LAPE (language activation probability entropy, Tang et al. 2024, "Language-Specific Neurons"):
  p_i = freq_i / sum_j freq_j over languages, entropy H = -sum_i p_i ln p_i (low = specific). An
  expert is a candidate when its largest frequency reaches tau, the ``filter_quantile`` quantile
  of all frequencies; the ``entropy_quantile`` share of candidates with the lowest H (at least
  one) is selected, and a selected expert belongs to every language whose frequency reaches tau.
- Centre of mass of per-layer counts: sum_l l * count_l / sum_l count_l (0-based layer index).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def shared_mask(freq: np.ndarray, threshold: float) -> np.ndarray:
    """[..., n, L, E] -> [..., L, E] True where every language reaches the threshold."""
    return (freq >= threshold).all(axis=-3)


def specific_mask(freq: np.ndarray, high: float, low: float) -> np.ndarray:
    """[..., n, L, E] -> [..., n, L, E] True where the expert is specific to language i."""
    n = freq.shape[-3]
    out = np.zeros(freq.shape, dtype=bool)
    if n == 1:  # no other language: the maximum over none is -inf
        out[...] = freq >= high
        return out
    # the largest of the others = max(largest before i, largest after i): two running maxima
    before = np.maximum.accumulate(freq, axis=-3)
    after = np.flip(np.maximum.accumulate(np.flip(freq, axis=-3), axis=-3), axis=-3)
    for i in range(n):
        if i == 0:
            others = after[..., 1, :, :]
        elif i == n - 1:
            others = before[..., n - 2, :, :]
        else:
            others = np.maximum(before[..., i - 1, :, :], after[..., i + 1, :, :])
        out[..., i, :, :] = (freq[..., i, :, :] >= high) & (others <= low)
    return out


def group_specific_mask(
    freq: np.ndarray, members: Sequence[int], high: float, low: float
) -> np.ndarray:
    """[..., n, L, E] -> [..., L, E] True where the group is high and every other language low."""
    inside = np.zeros(freq.shape[-3], dtype=bool)
    inside[list(members)] = True
    return (freq[..., inside, :, :].min(axis=-3) >= high) & (
        freq[..., ~inside, :, :].max(axis=-3) <= low
    )


def lape_entropy(freq: np.ndarray) -> np.ndarray:
    """[n, L, E] -> [L, E] entropy (nats) over languages of the normalised frequencies."""
    total = freq.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = freq / total
        terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.where(total > 0, terms.sum(axis=0), np.nan)


def lape_specific(
    freq: np.ndarray, filter_quantile: float, entropy_quantile: float
) -> tuple[np.ndarray, float]:
    """[n, L, E] -> ([n, L, E] LAPE-specific mask, the frequency cut tau)."""
    tau = float(np.quantile(freq, filter_quantile))
    entropy = lape_entropy(freq)
    candidate = (freq.max(axis=0) >= tau) & (freq.max(axis=0) > 0) & np.isfinite(entropy)
    selected = np.zeros(candidate.shape, dtype=bool)
    if candidate.any():
        values = entropy[candidate]
        n_keep = max(1, round(entropy_quantile * values.size))
        cut = np.sort(values)[n_keep - 1]
        selected = candidate & (entropy <= cut)
    return selected[None] & (freq >= tau), tau


def centre_of_mass(counts: np.ndarray) -> np.ndarray:
    """[..., L] -> [...] count-weighted mean layer index (NaN when all counts are 0)."""
    counts = np.asarray(counts, dtype=np.float64)
    layers = np.arange(counts.shape[-1])
    total = counts.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (counts * layers).sum(axis=-1) / total, np.nan)
