"""The design of a pruning sweep: methods x ratios x target languages, against random seeds and
the dense model (pure: which models to build and where to evaluate them; no run folder).

Jobs:

* ``dense``: the unpruned model, on every language;
* ``random`` (ratio, seed): language-independent, so one pruned model serves every language;
* a frequency or norm method (ratio, target A): evaluated on A; for the language-specificity
  check (``specificity_method`` at ``specificity_ratio``) on every language B as well.

The runner (``babelmoe.stages.sweep``) evaluates the jobs; ``babelmoe.analysis.sweep`` turns its
rows into curves and verdicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from babelmoe.errors import BabelmoeError, closest, setting
from babelmoe.prune.criteria import METHODS, PruneConfig, Selection, check_ratio, select_experts

if TYPE_CHECKING:
    from babelmoe.profile.artifact import ProfileData

# The evaluation and the profile (torch) are imported where used: ``babelmoe sweep --help`` reads
# this module's defaults and must stay fast.

DENSE, RANDOM = "dense", "random"


def swept_methods() -> list[str]:
    """Registered methods a sweep can compare with random: language-guided, with a ratio."""
    return [m.name for m in METHODS.values() if m.takes_ratio and m.statistic is not None]


@dataclass(frozen=True)
class SweepConfig:
    """What a sweep runs.

    Attributes:
        methods: pruning methods compared with random (any of ``METHODS`` but threshold, whose
            rate is set by tau, and random, which always runs with ``random_seeds``).
        ratios: shares of experts removed, each in [0, 1).
        languages: target (and evaluation) languages as profiled; None: every profiled language.
        random_seeds: seeds of the random baseline (its spread is the yardstick; 3 or more).
        seed: tie-breaking seed of the frequency and norm methods.
        specificity: run the language-specificity check (prune for A, evaluate on every B).
        specificity_method: method of that matrix; None: ``sort`` when swept, else the first
            of ``methods``.
        specificity_ratio: ratio of the matrix; None: the middle of ``ratios``.
        udhr_cont: also score the project's UDHR continuation task (slower).
        max_length: tokens per perplexity window.
        batch_size: sequences per forward pass.
        max_documents: at most this many held-out documents per language (None: all).
    """

    methods: tuple[str, ...] = ("sort", "sort-per-layer", "norm")
    ratios: tuple[float, ...] = (0.1, 0.25, 0.4)
    languages: tuple[str, ...] | None = None
    random_seeds: tuple[int, ...] = (0, 1, 2)
    seed: int = 0
    specificity: bool = True
    specificity_method: str | None = None
    specificity_ratio: float | None = None
    udhr_cont: bool = False
    max_length: int = 1024
    batch_size: int = 4
    max_documents: int | None = None

    def __post_init__(self) -> None:
        for name in ("methods", "ratios", "random_seeds"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.languages is not None:
            object.__setattr__(self, "languages", tuple(self.languages))
        sweepable = swept_methods()
        for method in self.methods:
            if method not in sweepable:
                close = closest(method, sweepable)
                hint = f"did you mean {close!r}? " if close and method not in METHODS else ""
                raise BabelmoeError(
                    f"{setting('methods')}: {method!r} cannot be swept",
                    f"{hint}use {', '.join(sweepable)} (random always runs; threshold has no "
                    "ratio)",
                )
        if not self.methods or not self.ratios:
            raise BabelmoeError(
                "a sweep needs at least one method and one ratio",
                f"pass {setting('methods')}, {setting('ratios')}",
            )
        for ratio in self.ratios:
            check_ratio(ratio)
        if len(set(self.ratios)) != len(self.ratios) or len(set(self.random_seeds)) != len(
            self.random_seeds
        ):
            raise BabelmoeError("duplicate ratios or seeds", "list each once")
        if self.specificity_method is not None and self.specificity_method not in self.methods:
            raise BabelmoeError(
                f"{setting('specificity_method')} {self.specificity_method} is not among "
                f"{setting('methods')}",
                "pick one of the swept methods",
            )
        if self.specificity_ratio is not None and self.specificity_ratio not in self.ratios:
            raise BabelmoeError(
                f"{setting('specificity_ratio')} {self.specificity_ratio} is not among "
                f"{setting('ratios')}",
                "pick one of the swept ratios",
            )
        from babelmoe.evaluate.perplexity import PerplexityConfig

        PerplexityConfig(max_length=self.max_length, batch_size=self.batch_size)  # validates

    @property
    def matrix_method(self) -> str | None:
        """The method of the language-specificity matrix (None: no matrix)."""
        if not self.specificity:
            return None
        if self.specificity_method is not None:
            return self.specificity_method
        return "sort" if "sort" in self.methods else self.methods[0]

    @property
    def matrix_ratio(self) -> float:
        """The ratio of the language-specificity matrix."""
        if self.specificity_ratio is not None:
            return self.specificity_ratio
        return sorted(self.ratios)[len(self.ratios) // 2]


@dataclass(frozen=True)
class Job:
    """One pruned (or dense) model and the languages it is evaluated on."""

    method: str
    ratio: float
    seed: int | None
    target: str | None
    eval_langs: tuple[str, ...]


def row_key(row: dict[str, Any]) -> tuple:
    """Identity of a row: the configuration and the evaluated language."""
    return (row["method"], float(row["ratio"]), row["seed"], row["target"], row["eval_lang"])


def plan_jobs(config: SweepConfig, names: Sequence[str]) -> list[Job]:
    """Every job of the sweep, dense first, then per ratio random and the methods."""
    names = tuple(names)
    jobs = [Job(DENSE, 0.0, None, None, names)]
    for ratio in sorted(config.ratios):
        jobs += [Job(RANDOM, ratio, seed, None, names) for seed in config.random_seeds]
        for method in config.methods:
            matrix = method == config.matrix_method and ratio == config.matrix_ratio
            for target in names:
                jobs.append(Job(method, ratio, config.seed, target, names if matrix else (target,)))
    return jobs


def job_selection(job: Job, profile: ProfileData) -> Selection | None:
    """The experts a job removes (None for the dense model)."""
    from babelmoe.prune.targets import resolve_languages, statistic

    if job.method == DENSE:
        return None
    languages = (job.target,) if job.target is not None else ()
    prune = PruneConfig(method=job.method, ratio=job.ratio, languages=languages, seed=job.seed or 0)  # type: ignore[arg-type]
    values = statistic(profile, prune, resolve_languages(profile, languages)) if languages else None
    return select_experts(prune, values, (profile.n_layers, profile.n_experts))
