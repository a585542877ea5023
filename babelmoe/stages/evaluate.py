"""The evaluate stage's runner: a (pruned or dense) model on the run's held-out text and tasks.

Tasks (each a ``TaskResult`` per language, written by ``write_task_result`` as
``<task>.<lang>.json`` + ``<task>.<lang>.items.jsonl``), then ``results.json`` with every
headline number, the model's identity and, for a pruned model, its pruning record:

* ``perplexity``: token-weighted, BOS prepended, on the held-out documents of the run's
  profile (:mod:`babelmoe.stages.heldout`), never on profiled text;
* ``udhr-cont`` (``udhr_cont``): the project's own UDHR continuation task, built from the same
  held-out documents (one item per sentence by default: a handful of held-out articles give
  too few documents for one item each);
* ``xcsqa`` / ``mgsm-cot`` / ``mgsm-direct``: the published files, when a folder is given, run
  through lm-evaluation-harness with the shipped task configs (``babelmoe.evaluate.harness_tasks``,
  written per language into ``OUT/harness_tasks``); languages the folder has no file for are
  skipped with a warning, and a folder with no file for any language is an error;
* ``--tasks``: any lm-eval task name or task YAML, on the same loaded model.

Harness tasks need the ``eval`` extra; lm-eval's own files go to ``OUT/lm_eval``
(``results.json``, ``samples_<task>.jsonl``) beside babelmoe's per-item records. The UDHR-Cont
task config is written too (scored by babelmoe, so the main job needs no extra), so that
``lm_eval --include_path OUT/harness_tasks`` can re-run every task.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from babelmoe import artifacts
from babelmoe.errors import BabelmoeError, setting
from babelmoe.evaluate import (
    MGSMConfig,
    MultipleChoiceConfig,
    PerplexityConfig,
    TaskResult,
    UDHRContConfig,
    build_udhr_continuation_items,
    perplexity,
    read_mgsm,
    read_mgsm_exemplars,
    score_multiple_choice,
    write_task_result,
)
from babelmoe.evaluate.harness_tasks import (
    HarnessTask,
    write_mgsm_task,
    write_udhr_cont_task,
    write_xcsqa_task,
)
from babelmoe.evaluate.tasks.xcsqa import resolve_path
from babelmoe.models.loading import LoadedModel, ModelSpec, as_loaded, load_model, model_identity
from babelmoe.profile.artifact import load_profile
from babelmoe.prune.surgery import is_pruned_folder, load_pruned, read_pruning_record
from babelmoe.prune.targets import resolve_languages
from babelmoe.stages.config import EvaluateConfig
from babelmoe.stages.heldout import heldout_documents

logger = logging.getLogger(__name__)

RESULTS_FILE = artifacts.RESULTS_FILE
HARNESS_TASKS_DIR = "harness_tasks"


@dataclass(frozen=True)
class _DocumentRecord:
    """Per-document perplexity with the document's id."""

    id: str
    values: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, **self.values}


def load_for_evaluation(spec: ModelSpec) -> LoadedModel:
    """``spec``'s source: a pruned-model folder (through :func:`load_pruned`) or anything
    ``load_model`` takes."""
    path = Path(spec.source).expanduser()
    if not is_pruned_folder(path):
        return load_model(spec)
    from transformers import AutoTokenizer

    dtype = (
        None
        if spec.dtype == "auto" and spec.resolved_device().type == "cpu"
        else spec.resolved_dtype()
    )
    model = load_pruned(path, dtype=dtype, device=spec.resolved_device())
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError):
        raise BabelmoeError(
            f"{path} has no tokenizer", "re-run babelmoe prune (it saves one)"
        ) from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return LoadedModel(model, tokenizer, model_identity(model, str(path)), source=spec.source)


def _pruning_record(source: str | None) -> dict[str, Any] | None:
    """The pruning record of ``source`` when it is a pruned-model folder, else None."""
    path = Path(source).expanduser() if source is not None else None
    return read_pruning_record(path) if path is not None and is_pruned_folder(path) else None


def perplexity_result(
    loaded: LoadedModel, lang: str, documents: list[Any], config: PerplexityConfig
) -> TaskResult:
    """Perplexity of one language's documents (``Document`` objects) as a ``TaskResult``."""
    result = perplexity(
        loaded.model,
        loaded.tokenizer,
        [d.text for d in documents],
        config,
        desc=f"perplexity {lang}",
    )
    records = [
        _DocumentRecord(d.id, r.to_json()) for d, r in zip(documents, result.documents, strict=True)
    ]
    return TaskResult(
        "perplexity",
        lang,
        result.metrics(),
        records,
        {"perplexity": asdict(config), "documents": [d.id for d in documents]},
    )


def _task_file_langs(lang: str, aliases: list[str]) -> list[str]:
    return list(dict.fromkeys([lang, *aliases]))


# run(loaded, config, lang, held-out documents, file names to try for lang, task-config folder)
# -> results scored here, or harness tasks (written configs) to run through lm-eval together
TaskRunner = Callable[
    [LoadedModel, "EvaluateConfig", str, list[Any], list[str], Path],
    list[TaskResult | HarnessTask],
]


@dataclass(frozen=True)
class EvalTask:
    """One entry of the registry of evaluation tasks (beside perplexity, which always runs).

    A new task is one registration: ``@register_task(name, asked, check=...)`` on its runner
    (and, when it takes inputs, its fields in ``EvaluateConfig`` with their flags).

    Attributes:
        name: the task's name in results (``udhr_cont``, ``xcsqa``, ``mgsm``).
        asked: whether ``EvaluateConfig`` asks for it (e.g. ``--xcsqa DIR`` given).
        run: evaluates one language.
        check: refuses, before any model is loaded, inputs that give it nothing to run
            (``names``: the file names tried per language); None: nothing to check.
    """

    name: str
    asked: Callable[[EvaluateConfig], bool]
    run: TaskRunner
    check: Callable[[EvaluateConfig, dict[str, list[str]]], None] | None = None


TASKS: dict[str, EvalTask] = {}


def register_task(
    name: str,
    asked: Callable[[EvaluateConfig], bool],
    check: Callable[[EvaluateConfig, dict[str, list[str]]], None] | None = None,
):
    """Register an evaluation task run by ``babelmoe evaluate`` (a decorator)."""

    def decorate(run: TaskRunner) -> TaskRunner:
        TASKS[name] = EvalTask(name, asked, run, check)
        return run

    return decorate


def evaluate_languages(
    loaded: LoadedModel,
    documents: dict[str, list[Any]],
    config: EvaluateConfig,
    aliases: dict[str, list[str]] | None = None,
    out: Path | None = None,
) -> list[TaskResult]:
    """Perplexity and every task ``config`` asks for, on every language of ``documents``
    (held-out ``Document`` lists), then the harness tasks in one lm-eval run. Task configs and
    lm-eval's own files are written into ``out`` (a temporary folder when None)."""
    import tempfile

    with contextlib.ExitStack() as stack:
        if out is None:
            out = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="babelmoe-eval-")))
        tasks_dir = Path(out) / HARNESS_TASKS_DIR
        results: list[TaskResult] = []
        harness: list[HarnessTask] = []
        aliases = aliases or {}
        tasks = [task for task in TASKS.values() if task.asked(config)]
        for lang, docs in documents.items():
            results.append(perplexity_result(loaded, lang, docs, config.perplexity))
            logger.info("perplexity %s: %.3f", lang, results[-1].metrics["ppl"])
            names = _task_file_langs(lang, aliases.get(lang, []))
            for task in tasks:
                for done in task.run(loaded, config, lang, docs, names, tasks_dir):
                    (harness if isinstance(done, HarnessTask) else results).append(done)
        if harness or config.tasks:
            results += run_harness_tasks(loaded, config, harness, Path(out))
        return results


def run_harness_tasks(
    loaded: LoadedModel, config: EvaluateConfig, shipped: list[HarnessTask], out: Path
) -> list[TaskResult]:
    """The shipped task configs, then ``config.tasks`` (with ``config.num_fewshot``), through
    lm-eval on the loaded model; lm-eval's files into ``out/lm_eval``; babelmoe's view returned."""
    from babelmoe.evaluate.harness import (
        HarnessConfig,
        HarnessResult,
        harness_lm,
        run_harness,
        write_harness_results,
    )

    def harness_config(tasks: tuple[str, ...], num_fewshot: int | None) -> HarnessConfig:
        return HarnessConfig(
            tasks=tasks, limit=config.limit, num_fewshot=num_fewshot, batch_size=config.batch_size
        )

    runs = []
    if shipped:  # shots are in each config (MGSM: --mgsm-shots), not the user's --num-fewshot
        runs.append(harness_config(tuple(str(t.path) for t in shipped), None))
    if config.tasks:
        runs.append(harness_config(config.tasks, config.num_fewshot))
    lm = harness_lm(loaded.model, loaded.tokenizer, runs[0])
    combined = HarnessResult({}, {})
    for run in runs:
        combined = combined.merge(run_harness(loaded.model, loaded.tokenizer, run, lm=lm))
    write_harness_results(out, combined, overwrite=True)
    return combined.task_results()


def _first_existing(names: list[str], path_for) -> str | None:
    return next((n for n in names if path_for(n).is_file()), None)


@register_task("udhr_cont", lambda config: config.udhr_cont)
def _udhr_cont(
    loaded: LoadedModel,
    config: EvaluateConfig,
    lang: str,
    docs: list[Any],
    names: list[str],
    tasks_dir: Path,
) -> list[TaskResult | HarnessTask]:
    """Scored here (no extra needed); its task config is written for ``lm_eval`` re-runs."""
    task = UDHRContConfig(segment=config.udhr_cont_segment, max_items=config.limit)
    scoring = MultipleChoiceConfig(batch_size=config.batch_size, max_length=config.max_length)
    texts = [d.text for d in docs]
    items = build_udhr_continuation_items(texts, lang, task)
    write_udhr_cont_task(tasks_dir, items, lang)
    result = score_multiple_choice(
        loaded.model, loaded.tokenizer, items, scoring, desc=f"udhr-cont {lang}"
    )
    unit = "words" if items[0].delimiter else "chars"
    return [
        result.to_task_result(
            "udhr-cont", lang, {"task": asdict(task), "unit": unit, "scoring": asdict(scoring)}
        )
    ]


def _xcsqa_file(config: EvaluateConfig, names: list[str]) -> Path | None:
    """The X-CSQA file for a language (tried under each of its names), or None."""
    root = Path(config.xcsqa)  # type: ignore[arg-type]
    if root.is_file():
        return root
    found = _first_existing(names, lambda n: resolve_path(root, n, config.xcsqa_split))
    return None if found is None else resolve_path(root, found, config.xcsqa_split)


def _mgsm_code(config: EvaluateConfig, names: list[str]) -> str | None:
    """The code ``c`` of the language's ``mgsm_{c}.tsv`` (tried under each name), or None."""
    return _first_existing(names, lambda n: Path(config.mgsm) / f"mgsm_{n}.tsv")  # type: ignore[arg-type]


def _refuse_when_no_file(
    config: EvaluateConfig,
    names: dict[str, list[str]],
    found: Callable[[EvaluateConfig, list[str]], object | None],
    what: str,
    hint: str,
) -> None:
    """Refuse a task folder (``what``: its flag, the folder, the files it lacks) that has no
    file for any asked language."""
    if all(found(config, ns) is None for ns in names.values()):
        tried = ", ".join(sorted({n for ns in names.values() for n in ns if n}))
        raise BabelmoeError(f"{what} for any asked language (looked for {tried})", hint)


def _check_xcsqa(config: EvaluateConfig, names: dict[str, list[str]]) -> None:
    what = f"{setting('xcsqa')} {config.xcsqa}: no {{lang}}/{config.xcsqa_split}.jsonl"
    hint = "pass the X-CSQA folder holding one folder per language, or the languages it has"
    _refuse_when_no_file(config, names, _xcsqa_file, what, hint)


def _check_mgsm(config: EvaluateConfig, names: dict[str, list[str]]) -> None:
    what = f"{setting('mgsm')} {config.mgsm}: no mgsm_{{lang}}.tsv"
    hint = "pass the folder of the mgsm_{lang}.tsv files, or the languages it has"
    _refuse_when_no_file(config, names, _mgsm_code, what, hint)


@register_task("xcsqa", lambda config: config.xcsqa is not None, check=_check_xcsqa)
def _xcsqa(
    loaded: LoadedModel,
    config: EvaluateConfig,
    lang: str,
    docs: list[Any],
    names: list[str],
    tasks_dir: Path,
) -> list[TaskResult | HarnessTask]:
    path = _xcsqa_file(config, names)
    if path is None:
        logger.warning(
            "X-CSQA: no %s file for %s in %s; skipped", config.xcsqa_split, lang, config.xcsqa
        )
        return []
    return [write_xcsqa_task(tasks_dir, path, lang)]


@register_task("mgsm", lambda config: config.mgsm is not None, check=_check_mgsm)
def _mgsm(
    loaded: LoadedModel,
    config: EvaluateConfig,
    lang: str,
    docs: list[Any],
    names: list[str],
    tasks_dir: Path,
) -> list[TaskResult | HarnessTask]:
    found = _mgsm_code(config, names)
    if found is None:
        logger.warning("MGSM: no mgsm_%s.tsv in %s; skipped", lang, config.mgsm)
        return []
    problems = read_mgsm(Path(config.mgsm), found)  # type: ignore[arg-type]
    exemplars = read_mgsm_exemplars(config.mgsm_exemplars, found) if config.mgsm_exemplars else []
    if config.mgsm_shots > len(exemplars):
        raise BabelmoeError(
            f"{setting('mgsm_shots')} {config.mgsm_shots}: {config.mgsm_exemplars} has "
            f"{len(exemplars)} "
            f"exemplars for {found}",
            f"lower {setting('mgsm_shots')}",
        )
    mgsm = MGSMConfig(mode=config.mgsm_mode, n_shots=config.mgsm_shots)
    return [write_mgsm_task(tasks_dir, problems, found, mgsm, exemplars[: config.mgsm_shots])]


def check_named_tasks(config: EvaluateConfig, names: dict[str, list[str]]) -> None:
    """Refuse, before any model is loaded, harness tasks without lm-eval, ``--tasks`` entries
    lm-eval does not know, and what each asked task's ``check`` refuses (a named task folder with
    no file for any language; ``names``: the file names tried per language)."""
    if config.needs_harness:
        from babelmoe.evaluate.harness import require_lm_eval

        require_lm_eval()
    if config.tasks:
        from babelmoe.evaluate.harness import HarnessConfig, check_task_names

        check_task_names(
            HarnessConfig(tasks=config.tasks, limit=config.limit, num_fewshot=config.num_fewshot)
        )
    for task in TASKS.values():
        if task.check is not None and task.asked(config):
            task.check(config, names)


def write_results(
    out: Path, results: list[TaskResult], meta: dict[str, Any], overwrite: bool
) -> Path:
    """Per-task files, then ``results.json`` (``{task: {lang: metrics}}`` and ``meta``)."""
    task_meta = {**meta}
    if meta.get("pruning"):  # the per-layer lists stay in results.json only
        task_meta["pruning"] = {k: v for k, v in meta["pruning"].items() if k != "removed_experts"}
    for result in results:
        write_task_result(out, result, meta=task_meta, overwrite=overwrite)
    table: dict[str, dict[str, Any]] = {}
    for result in results:
        table.setdefault(result.task, {})[result.lang] = result.summary()["metrics"]
    summary = {
        "schema_version": artifacts.SCHEMA_VERSION,
        "kind": "evaluation",
        **meta,
        "results": table,
    }
    path = out / RESULTS_FILE
    artifacts.atomic_write_json(path, artifacts.finite_json(summary))
    return path


def default_eval_dir(run_dir: Path, source: str) -> Path:
    """``RUN/eval/<model folder name>`` (``default`` for the bundled model)."""
    name = Path(source).expanduser().name or "model"
    return Path(run_dir) / artifacts.EVAL_DIR / name.replace(":", "_")


def run_evaluate(
    config: EvaluateConfig,
    run_dir: Path,
    *,
    model: LoadedModel | ModelSpec,
    out: Path | None = None,
    force: bool = False,
    overwrite: bool | None = None,
) -> Path:
    """Evaluate ``model`` (its source: a pruned folder, a model folder, a hub id or
    ``default``) on ``run_dir``'s held-out text and the asked tasks; write into ``out``
    (default: ``RUN/eval/<source's name>``); return results.json.

    ``force``: replace earlier results in ``out`` (as every stage says it; ``overwrite`` is its
    deprecated old name)."""
    if overwrite is not None:
        warnings.warn(
            "run_evaluate(overwrite=...) is deprecated: pass force=...",
            DeprecationWarning,
            stacklevel=2,
        )
        force = force or overwrite
    run_dir = Path(run_dir)
    source = model.source  # None: a LoadedModel built in memory
    for name, path in (
        ("xcsqa", config.xcsqa),
        ("mgsm", config.mgsm),
        ("mgsm_exemplars", config.mgsm_exemplars),
    ):
        if path is not None and not Path(path).exists():
            raise BabelmoeError(
                f"{setting(name)} {path}: no such file or folder", "pass an existing path"
            )
    profile = load_profile(run_dir)
    indices = resolve_languages(profile, config.languages) if config.languages else None
    out = Path(out) if out is not None else default_eval_dir(run_dir, source or "")
    if (out / RESULTS_FILE).exists() and not force:
        raise BabelmoeError(
            f"{out / RESULTS_FILE} already exists",
            f"pass {setting('force')} or choose another {setting('out')}",
        )
    documents = heldout_documents(profile, indices, config.max_documents)
    chosen = indices if indices is not None else range(len(profile.languages))
    aliases = {
        name: [(profile.languages[i].get("bcp47") or "").split("-")[0], profile.codes[i]]
        for name, i in zip(documents, chosen, strict=True)
    }
    check_named_tasks(config, {name: _task_file_langs(name, a) for name, a in aliases.items()})
    with artifacts.run_lock(out):  # before the model loads: a second writer is refused at once
        record = _pruning_record(source)
        loaded = as_loaded(model, load=load_for_evaluation)
        if record is not None and record.get("profile_sha256") != profile.meta.get(
            "tensors_sha256"
        ):
            logger.warning(
                "%s was pruned with another run's profile: this run's held-out documents may "
                "have been profiled text for that pruning",
                source,
            )
        with artifacts.transaction(out):  # every output at once, or the folder as it was
            results = evaluate_languages(loaded, documents, config, aliases, out)
            meta = {
                "model": loaded.identity,
                "source": source,
                "run": str(run_dir),
                "pruning": record,
                "evaluate_config": {
                    k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()
                },
            }
            return write_results(out, results, meta, overwrite=force)
