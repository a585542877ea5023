"""Task results: per-item records (JSONL) beside a summary (JSON), written atomically.

For a task ``t`` on language ``l`` the writer produces, in the folder it is given (normally the
run folder's ``eval/``):

    t.l.json           summary: schema version, task, language, metrics, config, ``meta`` (the
                       caller's: model identity, pruning recipe ...)
    t.l.items.jsonl    one JSON object per item (or per document for perplexity)

The items are written first and the summary last, so a summary on disk means complete items.
Existing files are never overwritten silently.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from babelmoe.artifacts import (
    SCHEMA_VERSION,
    atomic_write_json,
    atomic_write_text,
    finite_json,
    read_json,
)
from babelmoe.errors import BabelmoeError, setting

SUMMARY_SUFFIX = ".json"
ITEMS_SUFFIX = ".items.jsonl"


class Record(Protocol):
    """Anything that turns into one JSON line."""

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ItemRecord:
    """The outcome of one item of an accuracy task."""

    id: str
    """The item's id in its dataset."""
    prediction: Any
    """What the model answered (a choice index, a number, or None when nothing was extracted)."""
    gold: Any
    """The correct answer, in the same form as ``prediction``."""
    correct: bool | None
    """Whether ``prediction`` counts as correct (None: the task scores no correctness, e.g. a
    rolling log-likelihood)."""
    scores: dict[str, Any] = field(default_factory=dict)
    """Task-specific evidence: log-likelihoods per choice, the generated text, ..."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "prediction": self.prediction,
            "gold": self.gold,
            "correct": self.correct,
            **self.scores,
        }


@dataclass
class TaskResult:
    """Everything one task run on one language produced."""

    task: str
    """Task name, e.g. ``"xcsqa"``, ``"mgsm-cot"``, ``"udhr-cont"``, ``"perplexity"``."""
    lang: str
    """Language code the task ran on."""
    metrics: dict[str, float]
    """Headline numbers (acc, acc_norm, n, chance ...)."""
    records: Sequence[Record]
    """Per-item (or per-document) records, in input order."""
    config: dict[str, Any] = field(default_factory=dict)
    """The resolved configs the numbers came from."""

    def summary(self, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The summary JSON object (``meta``: model identity etc. from the caller)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "task_result",
            "task": self.task,
            "lang": self.lang,
            "metrics": dict(self.metrics),
            "n_records": len(self.records),
            "items_file": result_paths(Path("."), self.task, self.lang)[1].name,
            "config": self.config,
            "meta": dict(meta or {}),
        }


def accuracy_stderr(accuracy: float, n: int) -> float:
    """Standard error of a mean of n 0/1 outcomes (sample variance, as lm-evaluation-harness)."""
    return math.sqrt(accuracy * (1 - accuracy) / (n - 1)) if n > 1 else math.nan


def result_paths(folder: Path, task: str, lang: str) -> tuple[Path, Path]:
    """(summary path, items path) of a task result inside ``folder``."""
    stem = f"{task}.{lang}"
    return folder / f"{stem}{SUMMARY_SUFFIX}", folder / f"{stem}{ITEMS_SUFFIX}"


def write_task_result(
    folder: Path,
    result: TaskResult,
    *,
    meta: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the items then the summary of ``result`` into ``folder``; return the summary path."""
    summary_path, items_path = result_paths(Path(folder), result.task, result.lang)
    if summary_path.exists() and not overwrite:
        raise BabelmoeError(
            f"{summary_path} already exists",
            f"pass {setting('overwrite')} or write into another folder",
        )
    lines = (
        json.dumps(finite_json(r.to_json()), ensure_ascii=False, allow_nan=False)
        for r in result.records
    )
    atomic_write_text(items_path, "".join(line + "\n" for line in lines))
    atomic_write_json(summary_path, finite_json(result.summary(meta)))
    return summary_path


def read_task_summary(folder: Path, task: str, lang: str) -> dict[str, Any] | None:
    """The summary of a finished task run, or None when there is none (lets sweeps resume)."""
    summary_path = result_paths(Path(folder), task, lang)[0]
    if not summary_path.is_file():
        return None
    return read_json(summary_path, "task_result", "delete it and re-run the evaluation")
