"""Stability of the findings over k-means seeds: several analyses of runs that differ only in
the split seed, compared (partition agreement, spread of the language distances, and whether each
group finding and the shared-expert layout hold in every seed)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from babelmoe.analysis.io import Row
from babelmoe.analysis.profile_analysis import AnalysisResult, GroupResult
from babelmoe.analysis.stats.stability import partition_agreement, spread


@dataclass
class SeedStudy:
    """Per-seed results side by side (seed 0 is the main run)."""

    runs: list[str]
    codes: list[str]
    ari_pairs: list[tuple[int, int]]
    ari: np.ndarray | None  # [n_pairs, L]; None when a run has no partition artifact
    distance: dict[str, np.ndarray]  # mean / std / min / max over seeds, each [n, n]
    shared_counts: np.ndarray  # [S, L]
    centres: np.ndarray  # [S]
    groups: dict[str, list[GroupResult]]  # group name -> one result per seed
    notes: list[str] = field(default_factory=list)

    @property
    def peaks(self) -> list[int]:
        return [int(np.argmax(counts)) for counts in self.shared_counts]

    def holds(self, group: str, alpha: float) -> list[bool]:
        """Per seed: the group is closer (statistic < 0) with p < alpha."""
        return [bool(g.test.statistic < 0 and g.test.p_value < alpha) for g in self.groups[group]]


def compare_seeds(
    results: list[AnalysisResult], labels: list[np.ndarray | None], runs: list[str]
) -> SeedStudy:
    """Bring the analyses of several seeds (same languages, same shape) together."""
    notes = []
    if any(lab is None for lab in labels):
        missing = [r for r, lab in zip(runs, labels, strict=True) if lab is None]
        notes.append(f"no partition in {', '.join(missing)}: partition agreement not computed")
        pairs, ari = [], None
    else:
        pairs, ari = partition_agreement(labels)  # type: ignore[arg-type]
    groups: dict[str, list[GroupResult]] = {}
    for result in results:
        for group in result.groups:
            groups.setdefault(group.name, []).append(group)
    groups = {name: found for name, found in groups.items() if len(found) == len(results)}
    return SeedStudy(
        runs=runs,
        codes=results[0].codes,
        ari_pairs=pairs,
        ari=ari,
        distance=spread(np.stack([r.distance for r in results])),
        shared_counts=np.stack([r.experts.shared_counts for r in results]),
        centres=np.array([r.experts.centre for r in results]),
        groups=groups,
        notes=notes,
    )


def seed_tables(study: SeedStudy, alpha: float) -> dict[str, tuple[str, list[Row]]]:
    """Tables of the seed study: name -> (description, rows)."""
    seeds: list[Row] = []
    for s, run in enumerate(study.runs):
        for name, found in study.groups.items():
            g = found[s]
            seeds.append(
                {
                    "seed_run": run,
                    "group": name,
                    "statistic": g.test.statistic,
                    "ci_low": g.ci[0],
                    "ci_high": g.ci[1],
                    "p_value": g.test.p_value,
                    "holds": bool(g.test.statistic < 0 and g.test.p_value < alpha),
                }
            )
    layers = [
        {"seed_run": run, "layer": layer, "shared": int(count)}
        for run, counts in zip(study.runs, study.shared_counts, strict=True)
        for layer, count in enumerate(counts)
    ]
    ari = (
        []
        if study.ari is None
        else [
            {"run_a": study.runs[i], "run_b": study.runs[j], "layer": layer, "ari": float(value)}
            for (i, j), row in zip(study.ari_pairs, study.ari, strict=True)
            for layer, value in enumerate(row)
        ]
    )
    n = len(study.codes)
    spread_rows = [
        {
            "lang_a": study.codes[i],
            "lang_b": study.codes[j],
            **{k: float(v[i, j]) for k, v in study.distance.items()},
        }
        for i in range(n)
        for j in range(i + 1, n)
    ]
    return {
        "stability_groups": ("group tests in every seed", seeds),
        "stability_shared": ("shared experts per layer in every seed", layers),
        "stability_ari": ("adjusted Rand index between seeds' partitions per layer", ari),
        "stability_distance": ("spread over seeds of the primary language distance", spread_rows),
    }
