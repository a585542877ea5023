"""lm-evaluation-harness on the model babelmoe loaded: any task name or task YAML file.

``run_harness`` wraps the model and tokenizer babelmoe already holds (dense, pruned uniform or
non-uniform, converted GGUF) in lm-eval's ``HFLM`` and calls ``lm_eval.simple_evaluate``; the
model runs where it was loaded (babelmoe's ``--device``). It returns lm-eval's result dict and
its per-item samples; ``write_harness_results`` stores both in lm-eval's own format (a
``results.json`` and one ``samples_{task}.jsonl`` per task, as ``lm_eval --output_path
--log_samples`` writes them, without the date in the name) beside babelmoe's per-item records.

BOS, as everywhere in babelmoe (``encoding.encode``): every sequence starts with the tokenizer's
BOS exactly once. ``harness_tokenizer`` checks what the tokenizer adds by itself: when it already
prepends BOS (Llama, Gemma with transformers 5) it is used as is, so the harness's own CLI on the
model folder scores the same tokens; when it adds nothing (byte-level BPE, GPT-2 style), a copy
whose post-processor prepends BOS is given to the harness.

lm-eval is an optional dependency (``pip install 'babelmoe[eval]'``); nothing here imports it at
module level.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from babelmoe.artifacts import atomic_write_json, atomic_write_text
from babelmoe.errors import BabelmoeError, closest, setting
from babelmoe.evaluate.encoding import encode, input_device
from babelmoe.evaluate.results import ItemRecord, TaskResult

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'babelmoe[eval]'"
HARNESS_DIR = "lm_eval"
"""Sub-folder of an evaluation folder holding lm-eval's own files."""
RESULTS_FILE = "results.json"
PROBE = "Hello world, 123 times."


def lm_eval_available() -> bool:
    """Whether lm-evaluation-harness is installed."""
    return importlib.util.find_spec("lm_eval") is not None


def require_lm_eval() -> None:
    """Raise a one-line ``BabelmoeError`` with the install command when lm-eval is missing."""
    if not lm_eval_available():
        raise BabelmoeError(
            f"{setting('tasks')} runs lm-evaluation-harness, which is not installed", INSTALL_HINT
        )


@dataclass(frozen=True)
class HarnessConfig:
    """What ``run_harness`` runs and how."""

    tasks: tuple[str, ...]
    """lm-eval task, group or tag names, or paths of task YAML files."""
    limit: int | float | None = None
    """At most this many items per task (a float < 1: that share); None: all."""
    num_fewshot: int | None = None
    """Few-shot examples per prompt; None: each task's default."""
    batch_size: int | str = 8
    """Sequences per forward (or ``"auto"``, lm-eval's search)."""
    include_path: tuple[Path, ...] = ()
    """Extra folders of task YAMLs; the folders of YAML files in ``tasks`` are added."""
    add_bos: bool = True
    """Start every sequence with BOS (babelmoe's convention; see the module docstring)."""
    max_length: int | None = None
    """Longest sequence the harness builds; None: the model's context length."""
    bootstrap_iters: int = 100_000
    """lm-eval's bootstrap iterations for the stderr of non-mean metrics (0: none)."""
    log_samples: bool = True
    """Keep the per-item samples (needed for the per-item records)."""

    def __post_init__(self) -> None:
        if isinstance(self.tasks, str) or not self.tasks:
            raise BabelmoeError("no harness task given", "pass task names or YAML files")
        if self.limit is not None and self.limit <= 0:
            raise BabelmoeError(
                f"{setting('limit')} must be > 0 (got {self.limit})", "omit it for all"
            )
        if self.num_fewshot is not None and self.num_fewshot < 0:
            raise BabelmoeError(
                f"{setting('num_fewshot')} must be >= 0 (got {self.num_fewshot})", "fix it"
            )
        if isinstance(self.batch_size, int) and self.batch_size < 1:
            raise BabelmoeError(f"batch size must be >= 1 (got {self.batch_size})", "pass e.g. 8")
        if isinstance(self.batch_size, str) and not self.batch_size.startswith("auto"):
            raise BabelmoeError(f"batch size {self.batch_size!r}", "pass a number or 'auto'")

    def task_files(self) -> list[Path]:
        """The entries of ``tasks`` that are YAML files (they must exist)."""
        files = []
        for task in self.tasks:
            if task.endswith((".yaml", ".yml")):
                path = Path(task).expanduser()
                if path.is_dir():
                    raise BabelmoeError(f"task file {task} is a folder", "pass a YAML file")
                if not path.is_file():
                    raise BabelmoeError(f"no such task file: {task}", "pass an existing YAML")
                files.append(path.resolve())
        return files

    def search_paths(self) -> list[Path]:
        """Folders the task manager indexes besides lm-eval's own tasks."""
        folders = [Path(p).expanduser().resolve() for p in self.include_path]
        folders += [f.parent for f in self.task_files()]
        return list(dict.fromkeys(folders))


@dataclass
class HarnessResult:
    """lm-eval's answer: the result dict (without samples) and the samples per task."""

    results: dict[str, Any]
    """``simple_evaluate``'s dict: results, configs, versions, n-shot, n-samples, config ..."""
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Per task, one dict per item (doc, arguments, resps, filtered_resps, metric values)."""

    def metrics(self, task: str) -> dict[str, Any]:
        """The result row of ``task`` (``acc,none``, ``acc_stderr,none`` ...)."""
        return dict(self.results.get("results", {}).get(task, {}))

    def merge(self, other: HarnessResult) -> HarnessResult:
        """Both runs in one result (per-task tables joined; ``other``'s scalars win)."""
        merged = dict(self.results)
        for key, value in other.results.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        return HarnessResult(merged, {**self.samples, **other.samples})

    def task_results(self) -> list[TaskResult]:
        """One babelmoe ``TaskResult`` per task, with per-item records (see ``to_task_result``)."""
        return [to_task_result(self, task) for task in self.samples]


def harness_tokenizer(
    tokenizer: PreTrainedTokenizerBase, add_bos: bool = True
) -> PreTrainedTokenizerBase:
    """A tokenizer whose own encoding (special tokens on) equals babelmoe's ``encode``.

    Returned unchanged when it already agrees; a copy with a BOS-prepending post-processor when
    it adds nothing and BOS is wanted. Anything else (a tokenizer adding EOS, or BOS when
    ``add_bos`` is off) is refused: the harness would score other tokens than babelmoe.
    """
    ours = encode(tokenizer, PROBE, add_bos=add_bos)
    theirs = list(tokenizer(PROBE)["input_ids"])
    if theirs == ours:
        return tokenizer
    bare = encode(tokenizer, PROBE, add_bos=False)
    if theirs == bare and ours != bare and getattr(tokenizer, "is_fast", False):
        from tokenizers.processors import TemplateProcessing

        bos, bos_id = tokenizer.bos_token, int(tokenizer.bos_token_id)
        patched = copy.deepcopy(tokenizer)
        patched.backend_tokenizer.post_processor = TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
        )
        if list(patched(PROBE)["input_ids"]) == ours:
            logger.info("the tokenizer adds no BOS: the harness gets a copy that does")
            return patched
    raise BabelmoeError(
        f"the tokenizer encodes {PROBE!r} as {theirs[:4]}..., babelmoe as {ours[:4]}... "
        "(special tokens differ)",
        "evaluate with add_bos matching the tokenizer, or give the model a tokenizer that "
        "adds only BOS",
    )


def harness_lm(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, config: HarnessConfig):
    """lm-eval's ``HFLM`` around the loaded model (not moved: it runs where it is)."""
    require_lm_eval()
    from lm_eval.models.huggingface import HFLM

    return HFLM(
        pretrained=model,
        tokenizer=harness_tokenizer(tokenizer, config.add_bos),
        batch_size=config.batch_size,
        max_length=config.max_length,
        device=str(input_device(model)),
    )


def task_manager(config: HarnessConfig):
    """lm-eval's ``TaskManager``: only the given folders when every task is a YAML file (indexing
    lm-eval's ~15k task configs takes tens of seconds), lm-eval's tasks too otherwise. Kept for
    the process: the check before the model loads and the run share one index."""
    files = config.task_files()
    paths = tuple(str(p) for p in config.search_paths())
    return _task_manager(paths, len(files) < len(config.tasks))


@functools.cache
def _task_manager(paths: tuple[str, ...], include_defaults: bool):
    require_lm_eval()
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=list(paths) or None, include_defaults=include_defaults)


def check_task_names(config: HarnessConfig) -> None:
    """Refuse task files that do not exist or that lm-eval would fail on (``task_files``), and
    task names lm-eval does not know (tasks, groups and tags), before any model is loaded."""
    from babelmoe.evaluate.task_files import check_task_file

    names = [t for t in config.tasks if not t.endswith((".yaml", ".yml"))]
    for path in config.task_files():
        check_task_file(path, num_fewshot=config.num_fewshot, limit=config.limit)
    manager = task_manager(config)
    if not names:
        return
    known = set(manager.all_tasks)
    unknown = [name for name in names if name not in known]
    if unknown:
        close = closest(unknown[0], known)
        raise BabelmoeError(
            f"lm-eval does not know task {', '.join(unknown)}"
            + (f" (did you mean {close!r}?)" if close else ""),
            "check the name (lm_eval ls tasks) or pass the path of a task YAML",
        )


def harness_fingerprints(config: HarnessConfig) -> dict[str, str]:
    """Per task of ``config``, the sha256 of its resolved config and local data
    (``task_files.task_fingerprint``): what a resumed result must have been evaluated on."""
    from babelmoe.evaluate.task_files import task_fingerprint

    names = [t for t in config.tasks if not t.endswith((".yaml", ".yml"))]
    index = task_manager(config) if names else None
    return {task: task_fingerprint(task, index) for task in config.tasks}


def run_harness(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    config: HarnessConfig,
    *,
    lm: Any = None,
) -> HarnessResult:
    """Run ``config.tasks`` through ``lm_eval.simple_evaluate`` on ``model``.

    ``lm``: an ``HFLM`` to reuse (``harness_lm``); built from ``model`` and ``tokenizer`` if None.
    """
    require_lm_eval()
    import lm_eval

    lm = lm if lm is not None else harness_lm(model, tokenizer, config)
    manager = task_manager(config)
    tasks = [
        str(Path(t).expanduser().resolve()) if t.endswith((".yaml", ".yml")) else t
        for t in config.tasks
    ]
    try:
        output = lm_eval.simple_evaluate(
            model=lm,
            tasks=tasks,
            num_fewshot=config.num_fewshot,
            limit=_bounded(config.limit),
            batch_size=config.batch_size,
            bootstrap_iters=config.bootstrap_iters,
            log_samples=config.log_samples,
            task_manager=manager,
        )
    except KeyError as exc:  # an unknown task name
        raise BabelmoeError(
            f"lm-eval does not know task {exc.args[0] if exc.args else exc}",
            "check the name (lm_eval ls tasks) or pass the path of a task YAML",
        ) from None
    if output is None:  # not rank 0
        return HarnessResult({}, {})
    samples = output.pop("samples", None) or {}
    return HarnessResult(dict(output), samples)


def _bounded(limit: int | float | None) -> int | float | None:
    """A limit lm-eval can slice with (``islice`` takes at most ``sys.maxsize``); a limit above
    a task's size means all of it either way."""
    import sys

    return min(limit, sys.maxsize) if isinstance(limit, int) else limit


def _babelmoe_name(result: HarnessResult, task: str) -> tuple[str, str]:
    """(babelmoe task, language) of a harness task: from a shipped task's metadata, else the
    harness task name and ``all``."""
    meta = result.results.get("configs", {}).get(task, {}).get("metadata") or {}
    if meta.get("babelmoe_task") and meta.get("lang"):
        return str(meta["babelmoe_task"]), str(meta["lang"])
    return task, "all"


def _metric(sample: Mapping[str, Any], names: Sequence[str]) -> tuple[str, float] | None:
    for name in names:
        if isinstance(sample.get(name), int | float):
            return name, float(sample[name])
    return None


def _record(sample: Mapping[str, Any], output_type: str, doc_key: str) -> ItemRecord:
    doc = sample.get("doc") or {}
    item_id = str(doc.get(doc_key, sample["doc_id"])) if isinstance(doc, Mapping) else ""
    item_id = item_id or str(sample["doc_id"])
    scored = _metric(sample, ("acc", "exact_match"))
    correct = None if scored is None else scored[1] == 1.0
    values = {k: v for k, v in sample.items() if isinstance(v, int | float) and k != "doc_id"}
    if output_type == "multiple_choice":
        lls = [float(r[0]) for r in sample["filtered_resps"]]
        prediction = max(range(len(lls)), key=lambda i: (lls[i], -i)) if lls else None
        scores = {**values, "loglikelihoods": lls}
    else:
        filtered = sample.get("filtered_resps")
        prediction = filtered[0] if isinstance(filtered, list) and filtered else filtered
        resps = sample.get("resps") or [[None]]
        scores = {**values, "output": resps[0][0] if resps[0] else None}
    return ItemRecord(item_id, prediction, sample.get("target"), correct, scores)


def to_task_result(result: HarnessResult, task: str) -> TaskResult:
    """babelmoe's view of one harness task: per-item records and the task's headline metrics.

    Metrics: every number lm-eval reports for the task (``acc``, ``acc_norm``, ``exact_match``
    ... with their stderr; the filter suffix ``,none`` dropped, other filters kept as
    ``metric,filter``), plus ``n``. Nothing else: a metric the task does not define (``acc``
    of a ``loglikelihood_rolling`` task) never appears.
    """
    samples = result.samples.get(task, [])
    config = result.results.get("configs", {}).get(task, {})
    output_type = str(config.get("output_type", ""))
    name, lang = _babelmoe_name(result, task)
    records = [_record(s, output_type, "id") for s in samples]
    row = result.metrics(task)
    filters = {key.partition(",")[2] for key in row if "," in key}
    metrics: dict[str, Any] = {}
    for key, value in row.items():
        if "," in key and isinstance(value, int | float) and not isinstance(value, bool):
            metric, _, filt = key.partition(",")
            metrics[metric if filt == "none" or len(filters) == 1 else key] = float(value)
    metrics["n"] = len(records)
    return TaskResult(
        task=name,
        lang=lang,
        metrics=metrics,
        records=records,
        config={"harness_task": task, "harness_config": _jsonable(config)},
    )


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def write_harness_results(folder: Path, result: HarnessResult, *, overwrite: bool = False) -> Path:
    """lm-eval's files in ``folder/lm_eval``: ``results.json`` and ``samples_{task}.jsonl``.

    The contents are what ``lm_eval --output_path --log_samples`` writes (the samples'
    arguments and responses sanitised the same way); the names carry no date. Returns the
    results path.
    """
    require_lm_eval()
    from lm_eval.utils import handle_non_serializable, sanitize_list

    out = Path(folder) / HARNESS_DIR
    path = out / RESULTS_FILE
    if path.exists() and not overwrite:
        raise BabelmoeError(
            f"{path} already exists", f"pass {setting('overwrite')} or another {setting('out')}"
        )
    for task, samples in result.samples.items():
        lines = []
        for sample in samples:
            sample = dict(sample)
            sample["arguments"] = {
                f"gen_args_{i}": {f"arg_{j}": a for j, a in enumerate(arg)}
                for i, arg in enumerate(sample.get("arguments", []))
            }
            sample["resps"] = sanitize_list(sample.get("resps", []))
            sample["filtered_resps"] = sanitize_list(sample.get("filtered_resps", []))
            sample["target"] = str(sample.get("target"))
            lines.append(json.dumps(sample, default=handle_non_serializable, ensure_ascii=False))
        atomic_write_text(out / f"samples_{task}.jsonl", "".join(line + "\n" for line in lines))
    atomic_write_json(path, json.loads(json.dumps(result.results, default=handle_non_serializable)))
    return path
