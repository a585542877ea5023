"""A user's lm-eval task YAML checked before any model loads, and what identifies what it runs.

``check_task_file`` reads a task YAML the way lm-eval will (``include`` merged, ``!function``
kept as a reference) and refuses, in one line naming the file and the field, what lm-eval would
only fail on after the model has loaded and the perplexity pass has run: YAML that does not
parse, an empty or list-shaped file, no task name, an unknown ``output_type``, local data files
that are missing or not JSON lines, split names the data does not have, templates naming a field
the documents lack (rendered on every document with lm-eval's own jinja settings), multiple-choice
targets outside the choices, and more few-shot examples than the task can draw.

``task_fingerprint`` is the sha256 of what an evaluation of a task depends on: the resolved
config, the bytes of its local data files and of the local modules its ``!function`` entries
name (plus the lm-eval version). ``babelmoe sweep``
resumes harness rows only when the fingerprint is unchanged, so an edited YAML or data file is
recomputed rather than reported with old numbers. Pure functions of the files: no lm-eval import
except for the version and the task index of named tasks.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from babelmoe.errors import BabelmoeError, setting

logger = logging.getLogger(__name__)

OUTPUT_TYPES = ("loglikelihood", "loglikelihood_rolling", "multiple_choice", "generate_until")
TEMPLATE_FIELDS = ("doc_to_text", "doc_to_target", "doc_to_choice")
SPLIT_FIELDS = ("test_split", "validation_split", "training_split", "fewshot_split")
MAX_CHECKED_DOCS = 100_000
"""Documents per data file whose templates are rendered (all of any realistic task)."""


@dataclass(frozen=True)
class FunctionRef:
    """A ``!function module.name`` reference, kept unresolved (nothing is imported)."""

    name: str

    def __str__(self) -> str:
        return f"!function {self.name}"


class _Loader(yaml.SafeLoader):
    """YAML as lm-eval reads it, without importing the functions it names."""


_Loader.add_constructor(
    "!function", lambda loader, node: FunctionRef(str(loader.construct_scalar(node)))
)


def _fail(path: Path, where: str, problem: str, fix: str) -> BabelmoeError:
    return BabelmoeError(f"task file {path}: {where}{': ' if where else ''}{problem}", fix)


def load_task_yaml(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The task config of ``path`` with its ``include`` files merged (local keys win)."""
    path = Path(path).expanduser().resolve()
    if path in _seen:
        raise _fail(path, "include", "includes itself", "remove the include cycle")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BabelmoeError(f"no such task file: {path}", "pass an existing YAML") from None
    except IsADirectoryError:
        raise BabelmoeError(f"task file {path} is a folder", "pass a YAML file") from None
    except UnicodeDecodeError:
        raise _fail(path, "", "not UTF-8 text", "save the YAML as UTF-8") from None
    except OSError as exc:
        raise _fail(path, "", f"cannot be read ({exc.strerror})", "check the path") from None
    try:
        config = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise _fail(path, where, f"not valid YAML ({problem})", "fix the YAML syntax") from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise _fail(path, "", f"not valid YAML ({exc.__class__.__name__})", "fix it") from None
    if config is None:
        raise _fail(path, "", "is empty", "write a task config (task, dataset_path, ...)")
    if not isinstance(config, dict):
        raise _fail(
            path,
            "",
            f"holds a {type(config).__name__}, not a mapping of fields",
            "write the task as `task: NAME` and further `field: value` lines",
        )
    bad_keys = [k for k in config if not isinstance(k, str)]
    if bad_keys:
        raise _fail(path, repr(bad_keys[0]), "field names must be text", "fix the key")
    includes = config.pop("include", None)
    if includes is None:
        return config
    merged: dict[str, Any] = {}
    for include in includes if isinstance(includes, list) else [includes]:
        if not isinstance(include, str):
            raise _fail(path, "include", f"{include!r} is not a file name", "name a YAML file")
        target = Path(include) if Path(include).is_absolute() else path.parent / include
        if not target.is_file():
            raise _fail(path, "include", f"no such file {target}", "fix the include path")
        inherited = load_task_yaml(target, (*_seen, path))
        inherited.pop("task_list", None)
        merged.update(inherited)
    merged.update(config)
    return merged


@dataclass
class TaskFile:
    """A checked task YAML: its resolved config and its local data, split by split."""

    path: Path
    config: dict[str, Any]
    data_files: dict[str, list[Path]] = field(default_factory=dict)
    """Split name -> local data files (empty for hub datasets)."""
    docs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Split name -> its documents, for JSON data (empty otherwise)."""

    @property
    def name(self) -> str:
        return str(self.config.get("task"))


def _data_files(path: Path, config: Mapping[str, Any]) -> dict[str, list[Path]]:
    """Split -> files of ``dataset_kwargs.data_files`` (a file, a list, or split -> file(s))."""
    kwargs = config.get("dataset_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise _fail(path, "dataset_kwargs", "must be a mapping", "write `data_files: ...` under it")
    spec = kwargs.get("data_files")
    if spec is None:
        return {}
    if isinstance(spec, str | list):
        spec = {"train": spec}
    if not isinstance(spec, dict):
        raise _fail(
            path, "dataset_kwargs.data_files", "must be a file, a list or split: file", "fix it"
        )
    found: dict[str, list[Path]] = {}
    for split, files in spec.items():
        where = f"dataset_kwargs.data_files.{split}"
        for name in files if isinstance(files, list) else [files]:
            if not isinstance(name, str) or not name:
                raise _fail(path, where, f"{name!r} is not a file name", "give a path")
            if "://" in name or any(c in name for c in "*?["):
                return {}  # remote or glob: the datasets library resolves it
            file = Path(name).expanduser()
            if not file.is_file():
                what = "is a folder" if file.is_dir() else "no such file"
                raise _fail(
                    path,
                    where,
                    f"{what}: {name}",
                    "give an existing data file (a relative path is read from the folder you "
                    "run babelmoe in)",
                )
            found.setdefault(str(split), []).append(file)
    return found


def _read_json_docs(path: Path, file: Path, where: str, field_name: Any) -> list[dict[str, Any]]:
    """The documents of a JSON-lines (or one JSON array / ``field``) file, as lm-eval loads it."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _fail(path, where, f"{file} is not UTF-8 text", "save it as UTF-8") from None
    stripped = text.strip()
    docs: Any
    if stripped.startswith("[") or (field_name and stripped.startswith("{")):
        try:
            docs = json.loads(stripped)
        except (json.JSONDecodeError, RecursionError):
            docs = None
        if isinstance(docs, dict) and isinstance(field_name, str):
            docs = docs.get(field_name)
        if isinstance(docs, list) and all(isinstance(d, dict) for d in docs):
            return docs
    docs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            doc = None
        if not isinstance(doc, dict):
            raise _fail(
                path,
                where,
                f"{file} line {number} is not a JSON object (the data must be JSON lines)",
                "write one JSON object per line",
            )
        docs.append(doc)
    if not docs:
        raise _fail(path, where, f"{file} holds no documents", "add at least one JSON line")
    return docs


@functools.cache
def _jinja() -> Any:
    """lm-eval's jinja environment (``lm_eval.utils.env``): undefined names are errors."""
    from jinja2 import BaseLoader, Environment, StrictUndefined

    env = Environment(loader=BaseLoader, undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters["regex_replace"] = lambda s, pattern, repl, count=0: re.sub(
        pattern, repl, s, count=count
    )
    return env


def _render(template: str, doc: Mapping[str, Any]) -> str:
    """lm-eval's ``apply_template``."""
    return _jinja().from_string(template).render(**doc)


def _value(config: Mapping[str, Any], key: str, doc: Mapping[str, Any], features: set[str]):
    """What lm-eval's ``doc_to_text`` / ``doc_to_target`` / ``doc_to_choice`` give for ``doc``
    (None when the field is not a plain value or template: a function, a list ...)."""
    spec = config.get(key)
    if not isinstance(spec, str):
        return spec if isinstance(spec, int | list) else None
    if spec in features:
        return doc.get(spec)
    text = _render(spec, doc)
    if key == "doc_to_choice":
        return ast.literal_eval(text)
    if text.isdigit() and config.get("doc_to_choice") is not None:
        return int(text)
    return text


def _check_templates(task: TaskFile) -> None:
    """Render every template on every document; check choices and multiple-choice targets."""
    from jinja2 import TemplateError

    config, path = task.config, task.path
    if config.get("process_docs") is not None:
        return  # documents are transformed by the user's function: fields unknown here
    output_type = config.get("output_type", "generate_until")
    for split, docs in task.docs.items():
        features = {k for doc in docs for k in doc}
        for number, doc in enumerate(docs[:MAX_CHECKED_DOCS], 1):
            values = {}
            for key in TEMPLATE_FIELDS:
                try:
                    values[key] = _value(config, key, doc, features)
                except TemplateError as exc:
                    missing = str(getattr(exc, "message", "") or exc).split("\n")[0]
                    raise _fail(
                        path,
                        key,
                        f"{missing} in document {number} of split {split!r} (its fields: "
                        f"{', '.join(sorted(doc)) or 'none'})",
                        "name a field the data has, or fix the template",
                    ) from None
                except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                    raise _fail(
                        path,
                        key,
                        f"{config.get(key)!r} is neither a field of the data (its fields: "
                        f"{', '.join(sorted(features))}) nor a template giving a list "
                        f"(document {number} of split {split!r})",
                        "name the field holding the choices",
                    ) from None
            if output_type != "multiple_choice":
                continue
            choices, target = values.get("doc_to_choice"), values.get("doc_to_target")
            if not isinstance(choices, list) or not choices:
                raise _fail(
                    path,
                    "doc_to_choice",
                    f"gives {choices!r} for document {number} of split {split!r}, not a "
                    "non-empty list",
                    "name the field holding the list of choices",
                )
            if isinstance(target, str) and target.isdigit():
                target = int(target)
            index = isinstance(target, int) and not isinstance(target, bool)
            ok = (index and 0 <= target < len(choices)) or (
                isinstance(target, str) and target in choices
            )
            ok = ok or isinstance(target, list) or target is None
            if not ok:
                raise _fail(
                    path,
                    "doc_to_target",
                    f"gives {target!r} for document {number} of split {split!r}: neither an "
                    f"index below {len(choices)} nor one of the choices",
                    "make the target the index (from 0) or the text of the right choice",
                )


def _eval_split(config: Mapping[str, Any]) -> str | None:
    return config.get("test_split") or config.get("validation_split")


def _fewshot_split(config: Mapping[str, Any]) -> str | None:
    """The split lm-eval draws few-shot examples from (its own order of preference)."""
    for key in ("fewshot_split", "training_split", "validation_split", "test_split"):
        if config.get(key):
            return str(config[key])
    return None


def check_task_file(
    path: Path, *, num_fewshot: int | None = None, limit: int | float | None = None
) -> TaskFile:
    """Refuse a task YAML lm-eval would fail on (see the module docstring); return it read.

    ``num_fewshot``: the shots asked (None: the task's own ``num_fewshot``); ``limit``: unused
    for checks (a limit above the task's size means all of it), kept for symmetry.
    """
    path = Path(path).expanduser().resolve()
    config = load_task_yaml(path)
    if "group" in config and not isinstance(config.get("task"), str):
        return TaskFile(path, config)  # a group of tasks: each is checked by lm-eval
    name = config.get("task")
    if not isinstance(name, str) or not name.strip():
        raise _fail(
            path,
            "task",
            "missing" if name is None else f"{name!r} is not a task name",
            "add a line `task: my_task_name`",
        )
    output_type = config.get("output_type", "generate_until")
    if output_type not in OUTPUT_TYPES:
        raise _fail(
            path, "output_type", f"unknown {output_type!r}", f"use one of {', '.join(OUTPUT_TYPES)}"
        )
    if output_type == "multiple_choice" and config.get("doc_to_choice") is None:
        raise _fail(path, "doc_to_choice", "missing for a multiple_choice task", "name the field")
    for key in (*TEMPLATE_FIELDS, *SPLIT_FIELDS, "dataset_path"):
        value = config.get(key)
        if value is not None and not isinstance(value, str | int | list | dict | FunctionRef):
            raise _fail(path, key, f"{value!r} has the wrong type", "give text")
    for key in SPLIT_FIELDS:
        if config.get(key) is not None and not isinstance(config[key], str):
            raise _fail(path, key, f"{config[key]!r} is not a split name", "give the split name")
    task = TaskFile(path, config)
    if config.get("dataset_path") in ("json", "csv", "parquet", "text"):
        task.data_files = _data_files(path, config)
        if task.data_files and not _eval_split(config):
            raise _fail(
                path, "test_split", "neither test_split nor validation_split is set", "add one"
            )
        for key in SPLIT_FIELDS:
            split = config.get(key)
            if split and task.data_files and split not in task.data_files:
                raise _fail(
                    path,
                    key,
                    f"split {split!r} is not among dataset_kwargs.data_files' "
                    f"({', '.join(task.data_files)})",
                    "name one of those splits or add its file",
                )
    if config.get("dataset_path") == "json":
        field_name = (config.get("dataset_kwargs") or {}).get("field")
        for split, files in task.data_files.items():
            where = f"dataset_kwargs.data_files.{split}"
            task.docs[split] = [
                doc for file in files for doc in _read_json_docs(path, file, where, field_name)
            ]
        _check_templates(task)
    shots = num_fewshot if num_fewshot is not None else config.get("num_fewshot")
    source = _fewshot_split(config)
    if isinstance(shots, int) and shots > 0 and source in task.docs:
        available = len(task.docs[source]) - (1 if source == _eval_split(config) else 0)
        if shots > available:
            raise _fail(
                path,
                "num_fewshot",
                f"{shots} few-shot examples asked, but split {source!r} has only {available} "
                "to draw from" + (" (besides the document asked)" if available else ""),
                f"pass {setting('num_fewshot')} {max(available, 0)} or less, or add a "
                "fewshot_split",
            )
    return task


def _hash_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _file_digest(files: Iterator[Path] | list[Path]) -> list[str]:
    from babelmoe.artifacts import sha256_file

    return [sha256_file(f) for f in files]


def lm_eval_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lm_eval")
    except PackageNotFoundError:
        return "none"


def task_fingerprint(task: str, index: Any = None) -> str:
    """sha256 of what evaluating ``task`` depends on: for a YAML file its resolved config and the
    bytes of its local data files; for a task name the config lm-eval's index holds for it (and
    its YAML's data files when local); the lm-eval version in both."""
    parts: dict[str, Any] = {"lm_eval": lm_eval_version()}
    path = None
    if task.endswith((".yaml", ".yml")):
        path = Path(task)
    else:
        entry = getattr(index, "task_index", {}).get(task) if index is not None else None
        yaml_path = getattr(entry, "yaml_path", None)
        if yaml_path is not None and Path(yaml_path).is_file():
            path = Path(yaml_path)
        else:
            parts["name"] = task
            parts["entry"] = str(getattr(entry, "cfg", None))
    if path is not None:
        config = load_task_yaml(path)
        parts["config"] = config
        try:
            files = _data_files(path, config)
        except BabelmoeError:
            files = {}
        parts["data"] = {split: _file_digest(fs) for split, fs in sorted(files.items())}
        parts["functions"] = _function_files(path, config)
    return _hash_json(parts)


def _function_files(path: Path, config: Any) -> dict[str, str]:
    """sha256 of the local modules the config's ``!function`` references name (``utils.fn``:
    ``utils.py`` beside the YAML), so an edited filter or ``process_docs`` counts as a change."""
    found: dict[str, str] = {}

    def visit(value: Any) -> None:
        if isinstance(value, FunctionRef):
            module = value.name.rpartition(".")[0].replace(".", "/")
            file = path.parent / f"{module}.py"
            if module and file.is_file():
                found[value.name] = _file_digest([file])[0]
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(config)
    return found
