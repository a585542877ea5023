"""Pruning with per-layer budgets: keep a floor of every layer's most-used experts, then sort.

A pure selection rule over a [L, E] statistic (no I/O, no model), returning the ``Selection`` of
``babelmoe.prune.criteria``.

Why: ``sort`` drops the globally least-used experts and so keeps the most frequency mass, but at
high ratios it strips some layers almost bare (a layer whose z-scores rarely reach the global top
share keeps one or two experts), and one nearly empty FFN can break the model; ``sort-per-layer``
keeps every layer equally wide and so throws away frequency mass where a layer does matter. The
``mass-budget`` rule sits between them:

  1. every layer keeps its ``floor`` most-used experts, where ``floor`` is ``floor_share`` of the
     uniform per-layer keep: ``floor = ceil(floor_share * K / L)`` (at least 1, at most K // L),
     with ``K = L * E - round(r * L * E)`` experts kept in all;
  2. the remaining keep budget, ``K - L * floor``, goes to the most-used of the other experts over
     the whole model, i.e. to the layers in proportion to how much frequency mass they hold
     above their floor.

``floor_share = 0`` is ``sort`` (up to the one expert every layer keeps); ``floor_share = 1`` is
``sort-per-layer`` (up to rounding). The number removed is always ``round(r * L * E)``, the same as
every counted method, so methods compare at equal removed share. Ties are broken in a seeded
random order, as in ``criteria.ranking``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from babelmoe.errors import BabelmoeError
from babelmoe.prune.criteria import PruneConfig, Selection, check_ratio, ranking

DEFAULT_FLOOR_SHARE = 0.5


def floor_count(n_keep: int, n_layers: int, floor_share: float) -> int:
    """Experts every layer keeps whatever its frequencies, when ``n_keep`` are kept in all:
    ``ceil(floor_share * n_keep / L)``, at least 1 and at most ``n_keep // L``."""
    floor = math.ceil(floor_share * n_keep / n_layers - 1e-9)
    return max(1, min(floor, n_keep // n_layers))


def select_mass_budget(
    values: torch.Tensor,
    ratio: float,
    seed: int = 0,
    floor_share: float = DEFAULT_FLOOR_SHARE,
) -> Selection:
    """The experts to remove from ``values`` ([L, E] frequency of the target language(s)): drop
    ``round(ratio * L * E)`` experts, never one of a layer's ``floor_count`` most-used ones
    (at most ``L * (E - 1)``: every layer keeps an expert).

    Within a layer the floor is the layer's top experts by ``values`` (ties in a seeded random
    order); the other experts compete over the whole model, lowest first.
    """
    import torch

    check_ratio(ratio)
    if not 0.0 <= floor_share <= 1.0:
        raise BabelmoeError(
            f"floor_share must be in [0, 1], got {floor_share}", "pass e.g. floor_share=0.5"
        )
    if values.dim() != 2 or values.numel() == 0:
        raise BabelmoeError(
            f"expected an [L, E] statistic, got shape {tuple(values.shape)}",
            "pass the target languages' frequency per layer and expert",
        )
    n_layers, n_experts = values.shape
    notes = []
    n_drop = round(ratio * n_layers * n_experts)
    most = n_layers * (n_experts - 1)
    if n_drop > most:
        notes.append(f"asked to drop {n_drop} experts; at most {most} can go (one kept per layer)")
        n_drop = most
    floor = floor_count(n_layers * n_experts - n_drop, n_layers, floor_share)
    # Step 1: each layer's `floor` highest experts are protected.
    protected = torch.zeros(n_layers, n_experts, dtype=torch.bool)
    for layer in range(n_layers):
        order = ranking(values[layer : layer + 1], seed + layer)  # lowest first
        protected[layer, order[n_experts - floor :]] = True
    # Step 2: the lowest unprotected experts of the whole model go.
    rank = ranking(values, seed)
    candidates = rank[~protected.flatten()[rank]]  # at least n_drop: L * floor <= K
    drop = torch.zeros(n_layers * n_experts, dtype=torch.bool)
    drop[candidates[:n_drop]] = True
    return Selection(drop.view(n_layers, n_experts), notes)


SUMMARY = (
    "every layer keeps a floor of its most-used experts; the rest go by frequency over the whole "
    "model"
)


def select_by_config(config: PruneConfig, values, shape) -> Selection:
    """The rule as a pruning method (``babelmoe.prune`` registers it as ``mass-budget``)."""
    return select_mass_budget(values, float(config.ratio), config.seed)  # type: ignore[arg-type]
