"""Which experts belong to a language: selection rules (a registry) and the random null.

Every rule reads the profile's frequency [n_lang, L, E] (share of a language's tokens that
selected each expert) and scores each expert for language A; the selection keeps the ``k``
best-scored experts of every layer (``scope="layer"``) or the ``k * L`` best of the whole model
(``scope="global"``, so layers get what their scores earn). Rules:

* ``excess``: f[A] - mean over the other languages of f[B]: how much more often A selects the
  expert than the rest do.
* ``lape``: LAPE (Tang et al., ACL 2024) on experts: the languages' frequencies of an expert,
  normalised to a distribution over languages, have low entropy when few languages use it; the
  experts whose highest frequency is A's are A's, ranked from lowest entropy. A layer with fewer
  than k such experts gives fewer (the artifact states every layer's count).

The null of every experiment: ``random_like`` draws, per layer, as many experts uniformly at
random as the selection holds in that layer; selections with the same per-layer counts share
the draw of a seed (``null_groups``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from babelmoe.errors import BabelmoeError, setting, unknown_name

SCOPES = ("layer", "global")

# rule(frequency [n, L, E] float64, language index) -> (score [L, E], eligible [L, E] bool)
Rule = Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]
_RULES: dict[str, tuple[Rule, str]] = {}


def register_rule(name: str, rule: Rule, description: str) -> None:
    """Add a selection rule (higher score = more the language's own)."""
    _RULES[name] = (rule, description)


def rules() -> list[str]:
    """Names of the registered rules."""
    return list(_RULES)


def rules_help() -> str:
    """One line per rule, for ``--help``."""
    return "; ".join(f"{name}: {desc}" for name, (_, desc) in _RULES.items())


def _excess(frequency: torch.Tensor, a: int) -> tuple[torch.Tensor, torch.Tensor]:
    others = torch.cat([frequency[:a], frequency[a + 1 :]])
    score = frequency[a] - others.mean(0)
    return score, torch.ones_like(score, dtype=torch.bool)


def _lape(frequency: torch.Tensor, a: int) -> tuple[torch.Tensor, torch.Tensor]:
    total = frequency.sum(0, keepdim=True)  # [1, L, E]
    p = frequency / total.clamp_min(1e-12)
    entropy = -(p * p.clamp_min(1e-12).log()).sum(0)  # [L, E]
    eligible = (frequency.argmax(0) == a) & (frequency[a] > 0)
    return -entropy, eligible


register_rule("excess", _excess, "f[A] minus the mean frequency of the other languages")
register_rule("lape", _lape, "lowest entropy over languages among experts A uses most (LAPE)")


@dataclass(frozen=True)
class SelectionConfig:
    """How a language's experts are chosen."""

    rule: str = "excess"
    """A registered rule (``rules()``): excess or lape."""
    k: int = 16
    """Experts per layer (``scope="layer"``), or k * layers over the whole model (global)."""
    scope: str = "layer"
    """layer: k best in every layer; global: the k * L best anywhere."""

    def __post_init__(self) -> None:
        if self.rule not in _RULES:
            raise unknown_name("selection rule", self.rule, rules())
        if self.scope not in SCOPES:
            raise unknown_name("selection scope", self.scope, SCOPES)
        if self.k < 1:
            raise BabelmoeError(
                f"{setting('k')} must be at least 1 (got {self.k})", f"pass e.g. {setting('k')} 16"
            )


def select_language_experts(
    frequency: torch.Tensor, index: int, config: SelectionConfig
) -> torch.Tensor:
    """[L, E] bool: language ``index``'s experts under ``config`` (module docstring).

    Ties are broken by expert id (lowest first), so the selection is deterministic."""
    frequency = frequency.double()
    n_layers, n_experts = frequency.shape[1:]
    if config.k > n_experts:
        raise BabelmoeError(
            f"{setting('k')} = {config.k} is more than the {n_experts} experts of a layer",
            f"lower {setting('k')}",
        )
    rule, _ = _RULES[config.rule]
    score, eligible = rule(frequency, index)
    score = torch.where(eligible, score, torch.full_like(score, -torch.inf))
    chosen = torch.zeros(n_layers, n_experts, dtype=torch.bool)
    if config.scope == "layer":
        order = torch.argsort(-score, dim=1, stable=True)[:, : config.k]  # [L, k]
        chosen.scatter_(1, order, True)
    else:
        order = torch.argsort(-score.flatten(), stable=True)[: config.k * n_layers]
        chosen.view(-1)[order] = True
    return chosen & eligible


def random_like(selected: torch.Tensor, seed: int) -> torch.Tensor:
    """[L, E] bool: per layer, as many experts as ``selected`` holds there, uniformly at random."""
    generator = torch.Generator().manual_seed(int(seed))
    out = torch.zeros_like(selected, dtype=torch.bool)
    for layer, count in enumerate(selected.sum(1).tolist()):
        perm = torch.randperm(selected.shape[1], generator=generator)[: int(count)]
        out[layer, perm] = True
    return out


def null_groups(selected: torch.Tensor, names: list[str]) -> dict[str, str]:
    """Each language's null group: languages whose selections ([n, L, E] bool) have the same
    per-layer counts share one random set per seed (``random_like`` with the same seed and
    counts draws the same experts), named after the first of them (``random~en``)."""
    first: dict[tuple[int, ...], str] = {}
    groups = {}
    for name, counts in zip(names, selected.sum(2).tolist(), strict=True):
        groups[name] = first.setdefault(tuple(counts), f"random~{name}")
    return groups
