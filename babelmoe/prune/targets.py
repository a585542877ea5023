"""From a profile to the statistic a pruning rule ranks: language names, checks, aggregation.

Languages are named as the user named them to ``babelmoe profile`` (``en``, ``zh``) when the
profile recorded that request, else by the profile's label (ISO 639-3 ``eng``). A request is
matched, case-insensitively, against that name, the ISO 639-3 code, the BCP 47 tag and its
primary subtag.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from babelmoe.errors import BabelmoeError
from babelmoe.experts.partition import Partition
from babelmoe.profile.artifact import ProfileData
from babelmoe.prune.criteria import PruneConfig, Selection, aggregate_languages, select_experts


def language_names(profile: ProfileData) -> list[str]:
    """One display name per profiled language, in the profile's order (unique)."""
    requested = profile.meta.get("config", {}).get("languages")
    labels = profile.meta.get("corpus", {}).get("labels")
    for names in (requested, labels):
        if (
            isinstance(names, list)
            and len(names) == len(profile.languages)
            and len(set(names)) == len(names)
        ):
            return [str(n) for n in names]
    return profile.codes


def _aliases(profile: ProfileData, index: int) -> set[str]:
    entry = profile.languages[index]
    names = {language_names(profile)[index], entry.get("code")}
    labels = profile.meta.get("corpus", {}).get("labels")
    if isinstance(labels, list) and len(labels) == len(profile.languages):
        names.add(labels[index])
    bcp47 = entry.get("bcp47")
    if bcp47:
        names |= {bcp47, bcp47.split("-")[0]}
    return {str(n).lower() for n in names if n}


def resolve_languages(profile: ProfileData, requested: Sequence[str]) -> list[int]:
    """Indices of ``requested`` languages on the profile's language axis; a clear error for a
    language that was not profiled (or a name that matches two profiled languages)."""
    aliases = [_aliases(profile, i) for i in range(len(profile.languages))]
    names = language_names(profile)
    indices = []
    for name in requested:
        hits = [i for i, a in enumerate(aliases) if name.strip().lower() in a]
        if not hits:
            raise BabelmoeError(
                f"language {name!r} was not profiled (profiled: {', '.join(names)})",
                "pick one of those or re-run babelmoe profile with it",
            )
        if len(hits) > 1:
            raise BabelmoeError(
                f"language {name!r} matches several profiled languages "
                f"({', '.join(names[i] for i in hits)})",
                "use one of those names",
            )
        indices.append(hits[0])
    return indices


def check_profile_matches(profile: ProfileData, partition: Partition) -> None:
    """Refuse a profile counted with another partition than the one in the run folder."""
    expected = profile.meta.get("partition_sha256")
    if expected is not None and expected != partition.sha256:
        raise BabelmoeError(
            f"the profile was counted with partition {str(expected)[:12]}, but the run "
            f"folder's partition is {partition.sha256[:12]}",
            "re-run babelmoe profile after babelmoe split",
        )
    if (profile.n_layers, profile.n_experts) != (partition.n_layers, partition.n_experts):
        raise BabelmoeError(
            f"the profile has {profile.n_layers} layers x {profile.n_experts} experts, the "
            f"partition {partition.n_layers} x {partition.n_experts}",
            "re-run babelmoe profile",
        )


def statistic(
    profile: ProfileData, config: PruneConfig, indices: Sequence[int]
) -> torch.Tensor | None:
    """[L, E] float64 statistic ``config.method`` ranks by, over the target languages."""
    if config.statistic is None:
        return None
    per_language = profile.frequency if config.statistic == "frequency" else profile.mean_score
    return aggregate_languages(per_language, indices, config.aggregate)


def select_for_profile(profile: ProfileData, config: PruneConfig) -> Selection:
    """The experts ``config`` removes for its target languages in ``profile``."""
    indices = resolve_languages(profile, config.languages)
    values = statistic(profile, config, indices)
    return select_experts(config, values, (profile.n_layers, profile.n_experts))
