"""Which experts to remove: pure selection rules over a [L, E] statistic (no I/O, no model).

The statistic is the activation frequency of each (layer, expert) for the target language(s)
(``ProfileData.frequency``), or the mean raw expert score for the activation-norm baseline
(``ProfileData.mean_score``). For several target languages the per-language statistics are
combined per expert by ``aggregate``:

  mean  the average over the languages: an expert goes when the set as a whole uses it rarely;
  max   the largest over the languages: an expert goes only when *every* target language uses
        it rarely (conservative: keeps whatever any of them needs).

Methods (``ratio`` r in [0, 1) is the share of *experts* removed; with equal-size experts it is
also the share of FFN neurons, up to one neuron per expert when E does not divide the width):

  threshold       drop every expert with frequency < tau (no ratio; the rate follows from tau).
  sort            drop the round(r * L * E) experts of lowest frequency over the whole model;
                  layers lose different numbers of experts.
  sort-per-layer  drop the round(r * E) lowest-frequency experts of every layer (uniform width).
  adaptive        drop round(r * L * E) experts in total, spread over layers in proportion to
                  each layer's count of low-frequency experts (frequency below the
                  ``adaptive_quantile`` quantile of all L * E frequencies, the median by
                  default); within a layer the lowest go first. A layer with twice as many
                  low-frequency experts loses twice as many; if no expert is "low" (all
                  equal) every layer loses the same number.
  random          drop round(r * L * E) experts drawn uniformly over the whole model (seeded);
                  the baseline frequency-guided pruning must beat.
  norm            activation-norm baseline: like sort-per-layer on the mean expert score instead
                  of the frequency. Per layer because raw norms grow with depth and are not
                  comparable across layers (a global sort would strip the first layers).

Rules shared by all methods:

* ties are broken in a seeded random order (``seed``), never by position, so zero-frequency
  ties do not systematically hit the first layers or the first experts;
* a layer never loses every expert: its highest-ranked expert is kept (for the counted methods
  the total is then made up from other layers; for threshold the kept expert is reported in
  ``Selection.notes``), and per-layer counts are capped at E - 1.

torch is imported inside the functions: ``--help`` lists the registered methods, and must not
wait for torch (a method registered from another module follows the same rule).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

from babelmoe.errors import BabelmoeError, setting, unknown_name

Aggregate = Literal["mean", "max"]
Statistic = Literal["frequency", "mean_score"]
# select(config, values [L, E] or None, (L, E)) -> Selection
SelectFn = Callable[["PruneConfig", "torch.Tensor | None", tuple[int, int]], "Selection"]


@dataclass(frozen=True)
class PruningMethod:
    """One entry of the registry of pruning methods.

    Attributes:
        name: the name users pass (``--method``).
        select: the selection rule (pure; see ``select_experts``).
        statistic: what it ranks experts by: the target languages' activation ``frequency``,
            their ``mean_score`` (norm baseline), or None (language-independent, e.g. random).
        takes_ratio: the method removes a share ``ratio`` of the experts (threshold: ``tau``).
        summary: one line for ``--help``.
    """

    name: str
    select: SelectFn
    statistic: Statistic | None
    takes_ratio: bool = True
    summary: str = ""


# The registry (like ``METRICS`` and the architecture table); ``register_method`` adds to it.
METHODS: dict[str, PruningMethod] = {}


def register_method(
    name: str, *, statistic: Statistic | None, takes_ratio: bool = True, summary: str = ""
) -> Callable[[SelectFn], SelectFn]:
    """Register a selection rule as pruning method ``name`` (a decorator)."""

    def decorate(select: SelectFn) -> SelectFn:
        METHODS[name] = PruningMethod(name, select, statistic, takes_ratio, summary)
        return select

    return decorate


def get_method(name: str) -> PruningMethod:
    """The registered method ``name``; one clear line (with "did you mean") when unknown."""
    if name not in METHODS:
        raise unknown_name("pruning method", name, METHODS)
    return METHODS[name]


def methods_help() -> str:
    """The registered methods as one line for ``--help``."""
    return "; ".join(f"{m.name}: {m.summary}" for m in METHODS.values())


def frequency_methods() -> list[str]:
    """Methods that read the target languages' activation frequencies."""
    return [m.name for m in METHODS.values() if m.statistic == "frequency"]


def language_methods() -> list[str]:
    """Methods whose choice depends on the target languages at all."""
    return [m.name for m in METHODS.values() if m.statistic is not None]


@dataclass(frozen=True)
class PruneConfig:
    """What to remove and why.

    Attributes:
        method: selection rule, one of ``METHODS`` (see the module docstring).
        ratio: share of experts removed, in [0, 1); required by every method but threshold.
        tau: frequency threshold in [0, 1]; only for ``threshold`` (experts below it go).
        languages: target language(s) whose usage guides the choice (as profiled: ISO 639-3
            label, BCP 47 tag or the code given to ``profile``); not needed by ``random``.
        aggregate: how several target languages combine per expert: ``mean`` or ``max``.
        seed: seed of the random baseline and of the tie-breaking order.
        adaptive_quantile: for ``adaptive``, the quantile of all frequencies below which an
            expert counts as low-frequency (0.5: the median).
    """

    method: str = "sort"
    ratio: float | None = None
    tau: float | None = None
    languages: tuple[str, ...] = ()
    aggregate: Aggregate = "mean"
    seed: int = 0
    adaptive_quantile: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "languages", tuple(self.languages))
        if not get_method(self.method).takes_ratio:
            if self.tau is None or self.ratio is not None:
                raise BabelmoeError(
                    f"{setting('method')} {self.method} takes {setting('tau')}, not "
                    f"{setting('ratio')}",
                    f"pass e.g. {setting('tau')} 0.01",
                )
            if not 0.0 <= self.tau <= 1.0:
                raise BabelmoeError(
                    f"{setting('tau')} must be in [0, 1] (a frequency), got {self.tau}",
                    "pass e.g. 0.01",
                )
        else:
            if self.ratio is None or self.tau is not None:
                raise BabelmoeError(
                    f"{setting('method')} {self.method} takes {setting('ratio')}, not "
                    f"{setting('tau')}",
                    f"pass e.g. {setting('ratio')} 0.25",
                )
            check_ratio(self.ratio)
        if self.aggregate not in ("mean", "max"):
            raise BabelmoeError(f"unknown aggregate {self.aggregate!r}", "use mean or max")
        if self.method in language_methods() and not self.languages:
            raise BabelmoeError(
                f"{setting('method')} {self.method} needs target languages",
                f"pass {setting('languages')} en[,fr]",
            )
        if len(set(self.languages)) != len(self.languages):
            raise BabelmoeError(
                f"duplicate languages in {list(self.languages)}", "list each language once"
            )
        if not 0.0 < self.adaptive_quantile < 1.0:
            raise BabelmoeError(
                f"adaptive_quantile must be in (0, 1), got {self.adaptive_quantile}",
                "pass e.g. 0.5",
            )

    @property
    def statistic(self) -> Statistic | None:
        """What the method ranks experts by (None: language-independent, e.g. random)."""
        return METHODS[self.method].statistic


def check_ratio(ratio: float) -> None:
    """Refuse a pruning ratio outside [0, 1)."""
    if not 0.0 <= ratio < 1.0:
        raise BabelmoeError(
            f"pruning ratio must be in [0, 1) (a share of experts), got {ratio}", "pass e.g. 0.25"
        )


@dataclass
class Selection:
    """The experts a rule removes."""

    drop: torch.Tensor  # [L, E] bool: True = removed
    notes: list[str] = field(default_factory=list)
    """What the rule had to adjust (a layer kept from being emptied, counts capped ...)."""

    @property
    def n_dropped(self) -> int:
        return int(self.drop.sum())

    @property
    def rate(self) -> float:
        """Share of experts removed."""
        return self.n_dropped / self.drop.numel()

    def removed_experts(self) -> list[list[int]]:
        """Per layer, the removed expert ids in increasing order."""
        return [row.nonzero().flatten().tolist() for row in self.drop]


def aggregate_languages(stat: torch.Tensor, indices: Sequence[int], how: Aggregate) -> torch.Tensor:
    """[L, E] statistic of a set of languages from [n_lang, L, E] (``mean`` or ``max``)."""
    if not indices:
        raise BabelmoeError("no target languages", f"pass {setting('languages')} en[,fr]")
    chosen = stat[list(indices)].double()  # [n_sel, L, E]
    return chosen.mean(0) if how == "mean" else chosen.amax(0)


def ranking(values: torch.Tensor, seed: int) -> torch.Tensor:
    """Flat indices of ``values`` ([L, E]) from lowest to highest, ties in a seeded random order."""
    import torch

    flat = values.flatten()
    generator = torch.Generator().manual_seed(seed)
    shuffle = torch.randperm(flat.numel(), generator=generator)
    order = torch.argsort(flat[shuffle], stable=True)
    return shuffle[order]


def _protected(rank: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """[L, E] bool: each layer's highest-ranked expert (the last of the layer in ``rank``)."""
    import torch

    n_layers, n_experts = shape
    position = torch.empty_like(rank)
    position[rank] = torch.arange(rank.numel())
    best = position.view(n_layers, n_experts).argmax(1)  # [L]
    keep = torch.zeros(shape, dtype=torch.bool)
    keep[torch.arange(n_layers), best] = True
    return keep


def drop_lowest_global(values: torch.Tensor, n_drop: int, seed: int) -> Selection:
    """Drop the ``n_drop`` lowest experts of the whole model, keeping one per layer."""
    import torch

    n_layers, n_experts = values.shape
    notes = []
    most = n_layers * (n_experts - 1)
    if n_drop > most:
        notes.append(f"asked to drop {n_drop} experts; at most {most} can go (one kept per layer)")
        n_drop = most
    rank = ranking(values, seed)
    keep = _protected(rank, (n_layers, n_experts)).flatten()
    candidates = rank[~keep[rank]]
    lowest = candidates[:n_drop]
    lost_all = _layers_emptied(rank[:n_drop], n_layers, n_experts)
    if lost_all:
        notes.append(
            f"layer(s) {lost_all} would have lost every expert; their highest expert is kept "
            "and the next-lowest experts of other layers go instead"
        )
    drop = torch.zeros(n_layers * n_experts, dtype=torch.bool)
    drop[lowest] = True
    return Selection(drop.view(n_layers, n_experts), notes)


def _layers_emptied(flat: torch.Tensor, n_layers: int, n_experts: int) -> list[int]:
    import torch

    per_layer = torch.bincount(flat // n_experts, minlength=n_layers)
    return (per_layer >= n_experts).nonzero().flatten().tolist()


def drop_lowest_per_layer(values: torch.Tensor, counts: torch.Tensor, seed: int) -> Selection:
    """Drop ``counts[l]`` lowest experts of every layer l (counts capped at E - 1)."""
    import torch

    n_layers, n_experts = values.shape
    notes = []
    if int(counts.max()) > n_experts - 1:
        notes.append(f"per-layer counts capped at {n_experts - 1} (one expert kept per layer)")
    counts = counts.clamp(0, n_experts - 1)
    drop = torch.zeros(n_layers, n_experts, dtype=torch.bool)
    for layer in range(n_layers):
        order = ranking(values[layer : layer + 1], seed + layer)
        drop[layer, order[: int(counts[layer])]] = True
    return Selection(drop, notes)


def apportion(total: int, weights: torch.Tensor, caps: torch.Tensor) -> torch.Tensor:
    """Integer counts [L] summing to ``total`` (at most ``caps.sum()``), proportional to
    ``weights`` and each at most its cap.

    Water-filling: a layer whose share exceeds its cap gets the cap and the excess is shared
    among the others in proportion to their weights (uniformly when they all weigh 0); the
    shares are then rounded down and the missing units go to the largest remainders.
    """
    import torch

    weights = weights.double().clamp_min(0)
    caps = caps.long()
    total = min(int(total), int(caps.sum()))
    ideal = torch.zeros_like(weights)
    free = caps > 0
    remaining = float(total)
    while bool(free.any()):
        w = torch.where(free, weights, torch.zeros_like(weights))
        if float(w.sum()) <= 0:
            w = free.double()
        share = w / w.sum() * remaining
        over = free & (share > caps)
        if not bool(over.any()):
            ideal = torch.where(free, share, ideal)
            break
        ideal[over] = caps[over].double()
        remaining -= float(caps[over].sum())
        free &= ~over
    counts = torch.minimum((ideal + 1e-9).floor().long(), caps)
    short = total - int(counts.sum())
    if short > 0:
        remainder = torch.where(counts < caps, ideal - counts, torch.full_like(ideal, -torch.inf))
        counts[torch.argsort(-remainder, stable=True)[:short]] += 1
    return counts


def adaptive_counts(values: torch.Tensor, n_drop: int, quantile: float) -> torch.Tensor:
    """[L] experts to drop per layer: ``n_drop`` spread in proportion to each layer's number of
    experts below the ``quantile`` quantile of all values (uniform when none is below)."""
    import torch

    n_layers, n_experts = values.shape
    cut = torch.quantile(values.double().flatten(), quantile)
    low = (values < cut).sum(1)  # [L]
    caps = torch.full((n_layers,), n_experts - 1, dtype=torch.long)
    return apportion(n_drop, low.double(), caps)


def select_experts(
    config: PruneConfig, values: torch.Tensor | None, shape: tuple[int, int]
) -> Selection:
    """The experts ``config`` removes, given the target languages' [L, E] statistic ``values``
    (frequency, or mean score for ``norm``; ignored by language-independent methods)."""
    method = get_method(config.method)
    if method.statistic is not None and (values is None or tuple(values.shape) != tuple(shape)):
        raise BabelmoeError(
            f"the statistic has shape {None if values is None else tuple(values.shape)}, "
            f"expected {shape}",
            "use a profile made with this partition",
        )
    return method.select(config, values, shape)


def _n_drop(config: PruneConfig, shape: tuple[int, int]) -> int:
    return round(float(config.ratio) * shape[0] * shape[1])  # type: ignore[arg-type]


@register_method(
    "threshold",
    statistic="frequency",
    takes_ratio=False,
    summary="drop every expert with frequency < tau",
)
def _select_threshold(config: PruneConfig, values, shape) -> Selection:
    return _threshold(values, config.tau, config.seed)  # type: ignore[arg-type]


@register_method("sort", statistic="frequency", summary="lowest frequency over the whole model")
def _select_sort(config: PruneConfig, values, shape) -> Selection:
    return drop_lowest_global(values, _n_drop(config, shape), config.seed)


@register_method("sort-per-layer", statistic="frequency", summary="lowest frequency in every layer")
def _select_sort_per_layer(config: PruneConfig, values, shape) -> Selection:
    import torch

    counts = torch.full((shape[0],), round(float(config.ratio) * shape[1]), dtype=torch.long)
    return drop_lowest_per_layer(values, counts, config.seed)


@register_method(
    "adaptive",
    statistic="frequency",
    summary="per-layer budgets from each layer's count of low-frequency experts",
)
def _select_adaptive(config: PruneConfig, values, shape) -> Selection:
    counts = adaptive_counts(values, _n_drop(config, shape), config.adaptive_quantile)
    return drop_lowest_per_layer(values, counts, config.seed)


@register_method("random", statistic=None, summary="uniformly at random (seeded baseline)")
def _select_random(config: PruneConfig, values, shape) -> Selection:
    import torch

    generator = torch.Generator().manual_seed(config.seed)
    noise = torch.rand(shape, generator=generator, dtype=torch.float64)
    return drop_lowest_global(noise, _n_drop(config, shape), config.seed)


@register_method(
    "norm", statistic="mean_score", summary="lowest mean activation norm in every layer"
)
def _select_norm(config: PruneConfig, values, shape) -> Selection:
    return _select_sort_per_layer(config, values, shape)


def _threshold(values: torch.Tensor, tau: float, seed: int) -> Selection:
    drop = values < tau
    notes = []
    rank = ranking(values, seed)
    best = _protected(rank, tuple(values.shape))  # type: ignore[arg-type]
    emptied = drop.all(1).nonzero().flatten().tolist()
    for layer in emptied:
        expert = int(best[layer].nonzero()[0])
        drop[layer, expert] = False
        notes.append(
            f"layer {layer}: every expert is below tau={tau}; kept expert {expert} "
            f"(frequency {float(values[layer, expert]):.4g})"
        )
    return Selection(drop, notes)
