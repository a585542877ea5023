"""Pruning sweeps: methods x ratios x target languages, against random seeds and the dense model.

Every configuration prunes the one loaded model *in memory* (``temporarily_pruned``: the FFNs
are cut, evaluated, and the original parameters put back; nothing is copied or written) and
evaluates held-out perplexity (and UDHR-Cont accuracy when asked). Jobs:

* ``dense``: the unpruned model, on every language;
* ``random`` (ratio, seed): language-independent, so one pruned model serves every language;
* a frequency or norm method (ratio, target A): evaluated on A; for the language-specificity
  check (``specificity_method`` at ``specificity_ratio``) on every language B as well.

Rows go to ``RUN/sweep/rows.jsonl`` as each job finishes; re-running the same sweep skips the
rows already there (an interrupted sweep resumes). The summary, tables, plots and the report
section are written by :mod:`babelmoe.prune.sweep_report`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

import babelmoe.artifacts as artifacts_names
from babelmoe import artifacts
from babelmoe.errors import BabelmoeError
from babelmoe.evaluate import (
    MultipleChoiceConfig,
    PerplexityConfig,
    UDHRContConfig,
    evaluate_udhr_continuation,
    perplexity,
)
from babelmoe.experts.partition import Partition
from babelmoe.models.loading import LoadedModel
from babelmoe.profile.artifact import ProfileData
from babelmoe.prune.criteria import METHODS, PruneConfig, Selection, check_ratio, select_experts
from babelmoe.prune.surgery import temporarily_pruned
from babelmoe.prune.targets import language_names, resolve_languages, statistic

logger = logging.getLogger(__name__)

SWEEP_DIR = "sweep"
ROWS_FILE = artifacts_names.SWEEP_ROWS_FILE
DENSE, RANDOM = "dense", "random"


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
        for method in self.methods:
            if method not in METHODS or method in ("threshold", RANDOM):
                raise BabelmoeError(
                    f"--methods: {method!r} cannot be swept",
                    "use sort, sort-per-layer, adaptive or norm (random always runs; threshold "
                    "has no ratio)",
                )
        if not self.methods or not self.ratios:
            raise BabelmoeError(
                "a sweep needs at least one method and one ratio", "pass --methods, --ratios"
            )
        for ratio in self.ratios:
            check_ratio(ratio)
        if len(set(self.ratios)) != len(self.ratios) or len(set(self.random_seeds)) != len(
            self.random_seeds
        ):
            raise BabelmoeError("duplicate ratios or seeds", "list each once")
        if self.specificity_method is not None and self.specificity_method not in self.methods:
            raise BabelmoeError(
                f"--specificity-method {self.specificity_method} is not among --methods",
                "pick one of the swept methods",
            )
        if self.specificity_ratio is not None and self.specificity_ratio not in self.ratios:
            raise BabelmoeError(
                f"--specificity-ratio {self.specificity_ratio} is not among --ratios",
                "pick one of the swept ratios",
            )
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
    if job.method == DENSE:
        return None
    languages = (job.target,) if job.target is not None else ()
    prune = PruneConfig(method=job.method, ratio=job.ratio, languages=languages, seed=job.seed or 0)  # type: ignore[arg-type]
    values = statistic(profile, prune, resolve_languages(profile, languages)) if languages else None
    return select_experts(prune, values, (profile.n_layers, profile.n_experts))


def _measure(
    loaded: LoadedModel, lang: str, texts: list[str], config: SweepConfig
) -> dict[str, Any]:
    ppl = perplexity(
        loaded.model,
        loaded.tokenizer,
        texts,
        PerplexityConfig(max_length=config.max_length, batch_size=config.batch_size),
        desc=f"perplexity {lang}",
    )
    row: dict[str, Any] = {
        "ppl": ppl.ppl,
        "nll_sum": ppl.nll_sum,
        "n_tokens": ppl.n_tokens,
        "bits_per_byte": ppl.bits_per_byte,
    }
    if config.udhr_cont:
        result = evaluate_udhr_continuation(
            loaded.model,
            loaded.tokenizer,
            texts,
            lang,
            UDHRContConfig(segment="sentence"),
            MultipleChoiceConfig(batch_size=config.batch_size, max_length=config.max_length),
        )
        row.update(
            udhr_acc=result.metrics["acc"],
            udhr_acc_norm=result.metrics["acc_norm"],
            udhr_n=result.metrics["n"],
        )
    return row


def run_jobs(
    loaded: LoadedModel,
    partition: Partition,
    profile: ProfileData,
    documents: dict[str, list[str]],
    config: SweepConfig,
    done: dict[tuple, dict[str, Any]] | None = None,
    on_rows: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run the sweep's jobs on ``documents`` (``{language name: held-out texts}``); skip rows in
    ``done``; call ``on_rows`` with each new row. Returns every row (old and new)."""
    done = dict(done or {})
    sizes = partition.sizes()  # [L, E]
    jobs = plan_jobs(config, list(documents))
    for job in tqdm(jobs, desc="sweep", unit="model", disable=None):
        base = {"method": job.method, "ratio": job.ratio, "seed": job.seed, "target": job.target}
        todo = [lang for lang in job.eval_langs if row_key({**base, "eval_lang": lang}) not in done]
        if not todo:
            continue
        start = time.perf_counter()
        selection = job_selection(job, profile)
        if selection is None:
            pruned = {
                "experts_removed": 0,
                "expert_rate": 0.0,
                "neurons_removed": 0,
                "neuron_rate": 0.0,
            }
        else:
            removed = int(sizes[selection.drop].sum())
            pruned = {
                "experts_removed": selection.n_dropped,
                "expert_rate": selection.rate,
                "neurons_removed": removed,
                "neuron_rate": removed / sizes.sum().item(),
            }
        context = (
            temporarily_pruned(loaded.model, partition, selection.drop)
            if selection is not None
            else contextlib.nullcontext()
        )
        with context:
            for lang in todo:
                t0 = time.perf_counter()
                row = {**base, "eval_lang": lang, **pruned}
                row.update(_measure(loaded, lang, documents[lang], config))
                row["seconds"] = time.perf_counter() - t0
                done[row_key(row)] = row
                if on_rows is not None:
                    on_rows(row)
        logger.info(
            "%s r=%g seed=%s target=%s: %d language(s) in %.1fs",
            job.method,
            job.ratio,
            job.seed,
            job.target,
            len(todo),
            time.perf_counter() - start,
        )
    return list(done.values())


def sweep_identity(
    config: SweepConfig, partition: Partition, profile: ProfileData, model: dict
) -> dict:
    """What must match for saved rows to be reused."""
    return {
        "config": asdict(config),
        "partition_sha256": partition.sha256,
        "profile_sha256": profile.meta.get("tensors_sha256"),
        "model": model,
    }


def read_rows(path: Path, identity: dict[str, Any], force: bool) -> dict[tuple, dict[str, Any]]:
    """Rows of an earlier run of the same sweep (empty when none, or with ``force``)."""
    if force or not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        header = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        header = {}
    if header.get("identity") != artifacts.jsonable(identity):
        raise BabelmoeError(
            f"{path} holds rows of a different sweep",
            "pass --force to start over, or use another run folder",
        )
    rows = {}
    for line in lines[1:]:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut by an interruption
            continue
        rows[row_key(row)] = row
    logger.info("resuming: %d rows already in %s", len(rows), path)
    return rows


def start_rows(path: Path, identity: dict[str, Any], rows: dict[tuple, dict[str, Any]]) -> None:
    """(Re)write the rows file: the identity header, then the rows kept."""
    lines = [json.dumps({"identity": artifacts.jsonable(identity)})]
    lines += [json.dumps(r, allow_nan=True) for r in rows.values()]
    artifacts.atomic_write_text(path, "\n".join(lines) + "\n")


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append a finished row (flushed) so an interruption loses at most one evaluation."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, allow_nan=True) + "\n")
        handle.flush()


def run_sweep(run_dir: Path, config: SweepConfig, loaded: LoadedModel, force: bool = False) -> Path:
    """The sweep on ``run_dir``'s held-out text with ``loaded``; writes ``RUN/sweep/``."""
    from babelmoe.experts.partition import check_partition_fits
    from babelmoe.prune.heldout import heldout_documents
    from babelmoe.prune.runner import load_run
    from babelmoe.prune.sweep_report import write_report

    run_dir = Path(run_dir)
    partition, profile = load_run(run_dir)
    check_partition_fits(partition, loaded.model)
    indices = resolve_languages(profile, config.languages) if config.languages else None
    documents = heldout_documents(profile, indices, config.max_documents)
    texts = {name: [d.text for d in docs] for name, docs in documents.items()}
    folder = run_dir / SWEEP_DIR
    identity = sweep_identity(config, partition, profile, loaded.identity)
    with artifacts.run_lock(folder):
        path = folder / ROWS_FILE
        done = read_rows(path, identity, force)
        start_rows(path, identity, done)
        start = time.perf_counter()
        rows = run_jobs(
            loaded,
            partition,
            profile,
            texts,
            config,
            done,
            on_rows=lambda row: append_row(path, row),
        )
        seconds = time.perf_counter() - start
        meta = {
            **identity,
            "languages": list(texts),
            "all_languages": language_names(profile),
            "documents": {n: [d.id for d in docs] for n, docs in documents.items()},
            "seconds": seconds,
        }
        return write_report(folder, rows, config, meta)
