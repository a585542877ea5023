"""Tables and the summary of a model diff, built from a ``DiffResult`` (pure).

Tables: ``diff_layers`` (layer x language incl. "all": mean |delta| with its noise floor and
the p-value of "no change", correlation with its interval),
``diff_shared`` (per layer: shared in A, in B, gained, lost, changed beyond noise) and
``diff_experts`` (per layer the ``top_k`` largest language-mean changes, plus every expert that
gained or lost shared status; status = gained | lost | shared | other).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from babelmoe.analysis.config import DiffConfig, config_record
from babelmoe.analysis.diff import DiffResult
from babelmoe.analysis.io import Row, clean
from babelmoe.analysis.summary import fmt, fmt_p
from babelmoe.artifacts import SCHEMA_VERSION


def _status(a: bool, b: bool) -> str:
    return {(False, True): "gained", (True, False): "lost", (True, True): "shared"}.get(
        (a, b), "other"
    )


def diff_tables(result: DiffResult, config: DiffConfig) -> dict[str, tuple[str, list[Row]]]:
    labels = [*result.codes, "all"]
    n_layers = result.mean_abs.shape[1]
    layers = [
        {
            "layer": layer,
            "language": lab,
            "mean_abs_delta": result.mean_abs[k, layer],
            "noise_floor": result.noise_floor[k, layer],
            "p_no_change": result.noise_p[k, layer],
            "correlation": result.correlation[k, layer],
            "corr_ci_low": result.correlation_ci[0, k, layer],
            "corr_ci_high": result.correlation_ci[1, k, layer],
        }
        for layer in range(n_layers)
        for k, lab in enumerate(labels)
    ]
    sa, sb = result.shared_a, result.shared_b
    shared = [
        {
            "layer": layer,
            "shared_a": int(sa[layer].sum()),
            "shared_b": int(sb[layer].sum()),
            "gained": int((~sa[layer] & sb[layer]).sum()),
            "lost": int((sa[layer] & ~sb[layer]).sum()),
            "changed": int(result.changed[layer].sum()),
        }
        for layer in range(n_layers)
    ]
    mean_a, mean_b = result.freq_a.mean(axis=0), result.freq_b.mean(axis=0)  # [L, E]
    experts = []
    for layer in range(n_layers):
        top = np.argsort(-np.abs(result.pooled_delta[layer]), kind="stable")[: config.top_k]
        crossing = np.flatnonzero(sa[layer] != sb[layer])
        for expert in dict.fromkeys([*top.tolist(), *crossing.tolist()]):
            se = result.pooled_se[layer, expert]
            delta = result.pooled_delta[layer, expert]
            experts.append(
                {
                    "layer": layer,
                    "expert": int(expert),
                    "freq_a": mean_a[layer, expert],
                    "freq_b": mean_b[layer, expert],
                    "delta": delta,
                    "se": se,
                    "z": delta / se if se > 0 else float("nan"),
                    "changed": bool(result.changed[layer, expert]),
                    "status": _status(bool(sa[layer, expert]), bool(sb[layer, expert])),
                }
            )
    return {
        "diff_layers": ("per layer and language: change of frequencies from A to B", layers),
        "diff_shared": ("per layer: shared experts in A and B, gained, lost, changed", shared),
        "diff_experts": (
            "largest changes per layer and experts crossing the shared threshold",
            experts,
        ),
    }


def diff_summary(result: DiffResult, config: DiffConfig, runs: tuple[str, str]) -> dict[str, Any]:
    pooled_abs, pooled_corr = result.mean_abs[-1], result.correlation[-1]
    sa, sb = result.shared_a, result.shared_b
    gained, lost = int((~sa & sb).sum()), int((sa & ~sb).sum())
    most = int(np.nanargmax(pooled_abs))
    least = int(np.nanargmin(pooled_corr)) if np.isfinite(pooled_corr).any() else None
    beyond = [int(x) for x in np.flatnonzero(result.noise_p[-1] < 0.05)]
    noise = result.noise_floor[-1]
    findings = [
        f"Frequencies change most in layer {most}: mean |delta| = {fmt(pooled_abs[most])} "
        f"against {fmt(noise[most])} from sampling noise alone (p = "
        f"{fmt(result.noise_p[-1, most])}); the change exceeds the noise (p < 0.05) in "
        f"{len(beyond)} of {len(pooled_abs)} layers"
        + (f" ({', '.join(map(str, beyond))})" if beyond else "")
        + (
            ""
            if least is None
            else f"; A and B agree least in layer {least} (r = {fmt(pooled_corr[least])})"
        )
        + ".",
        f"Shared experts: {int(sa.sum())} in A, {int(sb.sum())} in B; {gained} gained, "
        f"{lost} lost; {int(result.changed.sum())} experts changed by more than "
        f"{config.z_threshold} bootstrap standard errors.",
    ]
    geometry = None
    if result.geometry is not None:
        geometry = result.geometry.as_dict()
        findings.append(
            f"Language geometry preserved: Mantel Spearman r between A's and B's "
            f"language distances = {fmt(result.geometry.statistic)}, "
            f"{fmt_p(result.geometry)}."
        )
    return clean(
        {
            "schema_version": SCHEMA_VERSION,
            "kind": "diff_summary",
            "run_a": runs[0],
            "run_b": runs[1],
            "languages": result.codes,
            "same_partition": result.same_partition,
            "config": config_record(config),
            "mean_abs_delta_per_layer": pooled_abs,
            "noise_floor_per_layer": noise,
            "p_no_change_per_layer": result.noise_p[-1],
            "layers_beyond_noise": beyond,
            "correlation_per_layer": pooled_corr,
            "layer_most_changed": most,
            "layer_least_correlated": least,
            "shared_a": int(sa.sum()),
            "shared_b": int(sb.sum()),
            "gained": gained,
            "lost": lost,
            "changed": int(result.changed.sum()),
            "geometry": geometry,
            "notes": result.notes,
            "findings": [{"topic": "model diff", "text": t} for t in findings],
        }
    )
