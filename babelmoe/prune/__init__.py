"""Pruning by expert activation frequency: selection rules, targets, model surgery, sweep design.

* ``criteria``: the registry of selection rules (``METHODS``, ``register_method``): which experts
  to remove ([L, E] statistic -> ``Selection``; pure);
* ``targets``: languages and statistics from a profile;
* ``surgery``: experts -> neurons -> a physically smaller model; ``save_pruned`` / ``load_pruned``;
* ``sweep``: the design of a sweep (methods x ratios x languages against random; pure).

The runners of ``babelmoe prune``, ``evaluate`` and ``sweep`` are in ``babelmoe.stages``.
"""

from __future__ import annotations

from typing import Any

from babelmoe.prune import mass_budget
from babelmoe.prune.criteria import METHODS, PruneConfig, Selection, register_method, select_experts

# The shipped methods beyond ``criteria``'s own, registered here (not as a side effect of an
# import); a method of another module registers the same way.
register_method("mass-budget", statistic="frequency", summary=mass_budget.SUMMARY)(
    mass_budget.select_by_config
)

# The surgery (torch) loads on first use (PEP 562): the registry above imports without torch, so
# ``--help`` can list the methods fast.
_SURGERY = (
    "PRUNING_FILE",
    "kept_neurons",
    "load_pruned",
    "prune_model",
    "read_pruning_record",
    "save_pruned",
    "temporarily_pruned",
)


def __getattr__(name: str) -> Any:
    if name not in _SURGERY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from babelmoe.prune import surgery

    return getattr(surgery, name)


__all__ = [
    "METHODS",
    "PRUNING_FILE",
    "PruneConfig",
    "Selection",
    "kept_neurons",
    "load_pruned",
    "prune_model",
    "read_pruning_record",
    "save_pruned",
    "select_experts",
    "temporarily_pruned",
]
