"""The expert nulls' headline numbers as claims, in the format the replication check reads.

A claims file (``RUN/family_vs_script/claims*.json``)::

    {"schema_version": 1, "n_languages": int, "correction": "...",
     "claims": [{"id", "statement", "estimate", "ci_low", "ci_high", "interval", "p",
                 "p_adjusted", "holds"}]}

The expert claims (``claims_experts.json``), whole model (summed over layers):

- ``experts.shared.layer_share`` / ``experts.specific.layer_share``: observed count minus the
  count expected when each language's frequencies are shuffled over the layer's experts (the
  within-layer null: "more than the layer's share of selections");
- ``experts.shared.label_null`` / ``experts.specific.label_null``: observed count minus its mean
  under permuted language labels (``analysis.label_null``). Excess counts, not ratios: the
  label null's mean is often 0 for specific experts;
- ``experts.shared.language_agnostic``: the share of shared experts whose frequency does not
  depend on language (claim: most do; binomial test against one half);
- ``experts.language_dependent``: the share of all experts whose frequency depends on language
  (claim: some do; Simes' global test = the smallest Benjamini-Hochberg adjusted p).

Intervals of the excess counts come from the document bootstrap (the expected count held fixed),
those of shares from Clopper-Pearson over experts. p-values are Holm-adjusted over the claims of
the file; a claim holds when its adjusted p < alpha and its estimate points the stated way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import beta, binomtest

from babelmoe.analysis.label_null import LabelNullResult
from babelmoe.analysis.stats.permutation import holm

CLAIMS_SCHEMA_VERSION = 1


def clopper_pearson(k: int, n: int, level: float) -> tuple[float, float]:
    """Exact binomial interval of k / n (NaN for n = 0)."""
    if n == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0
    low = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1.0 - tail, k + 1, n - k))
    return low, high


def _excess(observed: float, expected: float) -> float:
    if not np.isfinite(expected):
        return float("nan")
    excess = observed - expected
    return 0.0 if abs(excess) < 1e-9 else excess  # an expectation of ~1e-13 is none


def expert_claims(
    label: LabelNullResult,
    layer_share: dict[str, tuple[float, float, float]],
    boot_totals: dict[str, np.ndarray] | None,
    n_languages: int,
    alpha: float,
    ci_level: float,
    interval_text: str,
) -> dict[str, Any]:
    """The claims file's content.

    Args:
        label: the language-label null.
        layer_share: per kind (shared, specific): (observed total, expected total, p) of the
            within-layer null.
        boot_totals: per kind, [B] bootstrap totals of the observed count (None: no intervals).
        interval_text: how the bootstrap resampled (for the ``interval`` field).
    """
    tail = 100.0 * (1.0 - ci_level) / 2.0
    claims: list[dict[str, Any]] = []

    def count_claim(kind: str, null: str, expected: float, p: float, statement: str) -> None:
        observed = float(getattr(label, kind).sum())
        low = high = float("nan")
        if boot_totals is not None and boot_totals[kind].size:
            lo, hi = np.percentile(boot_totals[kind], [tail, 100.0 - tail])
            low, high = _excess(float(lo), expected), _excess(float(hi), expected)
        claims.append(
            {
                "id": f"experts.{kind}.{null}",
                "statement": statement,
                "estimate": _excess(observed, expected),
                "ci_low": low,
                "ci_high": high,
                "interval": interval_text,
                "p": p,
                "direction": "greater",
            }
        )

    for kind, what in (("shared", "shared"), ("specific", "language-specific")):
        _, expected, p = layer_share[kind]
        count_claim(
            kind,
            "layer_share",
            expected,
            p,
            f"More experts are {what} than the layers' shares of selections give (observed - "
            f"expected count, experts shuffled within each layer per language).",
        )
    for kind, what in (("shared", "shared"), ("specific", "language-specific")):
        count_claim(
            kind,
            "label_null",
            float(label.null_mean(kind).sum()),
            label.total_p(kind),
            f"More experts are {what} than with language labels permuted over documents "
            f"(observed - null mean count, labels permuted within {label.strata} strata).",
        )
    n_shared = int(label.shared.sum())
    agnostic = int(label.shared_agnostic.sum())
    low, high = clopper_pearson(agnostic, n_shared, ci_level)
    claims.append(
        {
            "id": "experts.shared.language_agnostic",
            "statement": (
                "Most shared experts are shared regardless of language: their frequency varies "
                "across languages no more than with language labels permuted over documents."
            ),
            "estimate": agnostic / n_shared if n_shared else float("nan"),
            "ci_low": low,
            "ci_high": high,
            "interval": f"Clopper-Pearson over the {n_shared} shared experts",
            "p": binomtest(agnostic, n_shared, 0.5, "greater").pvalue if n_shared else np.nan,
            "direction": "greater",
        }
    )
    dependent = label.dependent
    total = dependent.size
    low, high = clopper_pearson(int(dependent.sum()), total, ci_level)
    adjusted = label.dispersion_p_adjusted
    claims.append(
        {
            "id": "experts.language_dependent",
            "statement": (
                "Some experts' frequency depends on language beyond permuted language labels "
                "(estimate: the share of all experts, Benjamini-Hochberg)."
            ),
            "estimate": float(dependent.mean()) if total else float("nan"),
            "ci_low": low,
            "ci_high": high,
            "interval": f"Clopper-Pearson over the {total} experts",
            "p": float(np.nanmin(adjusted)) if np.isfinite(adjusted).any() else float("nan"),
            "direction": "greater",
        }
    )
    adjusted_all = holm([float(c["p"]) for c in claims])
    for claim, p_adj in zip(claims, adjusted_all, strict=True):
        claim["p_adjusted"] = float(p_adj)
        estimate = claim["estimate"]
        if claim["id"] in ("experts.shared.language_agnostic", "experts.language_dependent"):
            sign_ok = np.isfinite(estimate)
        else:
            sign_ok = np.isfinite(estimate) and estimate > 0
        claim["holds"] = bool(sign_ok and np.isfinite(p_adj) and p_adj < alpha)
        del claim["direction"]
    return {
        "schema_version": CLAIMS_SCHEMA_VERSION,
        "kind": "claims",
        "n_languages": n_languages,
        "correction": f"Holm over the {len(claims)} expert claims of this file",
        "alpha": alpha,
        "claims": claims,
    }
