"""Shipped lm-evaluation-harness task configs for the formats babelmoe reads, and their writers.

The package holds one template per task (``xcsqa.yaml``, ``mgsm.yaml``, ``udhr_cont.yaml``: the
prompt, the scoring, the metrics). A template is not a task by itself: a writer below makes one
task YAML per language in a folder of the user's choice (a run's ``eval/.../harness_tasks``),
``include:``-ing the template by absolute path and naming the local data, so that

    lm_eval --model hf --model_args pretrained=DIR --include_path FOLDER --tasks NAME

and ``babelmoe.evaluate.harness.run_harness`` run the same task on the same files. Nothing is
fetched from the hub: ``dataset_path: json`` with local ``data_files``.

* X-CSQA: the YAML points at the published ``{lang}/{split}.jsonl`` itself (checked first with
  babelmoe's reader, which refuses the unanswered test split);
* MGSM: ``mgsm_{lang}.tsv`` (and the exemplars, for few-shot) are read with babelmoe's reader and
  written as JSONL beside the YAML (id + the hub copy's fields: question, answer = the worked
  answer of an exemplar, "" for a problem, answer_number as text);
* UDHR-Cont: the items babelmoe builds from a run's held-out documents, written as JSONL.

Task names: ``babelmoe_xcsqa_{lang}``, ``babelmoe_mgsm_{cot|direct}_{lang}``,
``babelmoe_udhr_cont_{lang}``; each YAML's ``metadata`` carries ``babelmoe_task`` and ``lang`` so
results map back to babelmoe's ``{task}.{lang}`` records. The YAML is written as JSON (a subset of
YAML), so writing needs no YAML library.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babelmoe.artifacts import atomic_write_text
from babelmoe.errors import BabelmoeError
from babelmoe.evaluate.answers import as_json_number
from babelmoe.evaluate.multiple_choice import MultipleChoiceItem
from babelmoe.evaluate.tasks.mgsm import MGSMConfig, MGSMExemplar, MGSMProblem, template_for
from babelmoe.evaluate.tasks.xcsqa import read_xcsqa, xcsqa_items

PREFIX = "babelmoe"
TEMPLATES = Path(__file__).resolve().parent
VERSION = 1.0


@dataclass(frozen=True)
class HarnessTask:
    """One written task: its lm-eval name, its YAML, and what it is in babelmoe's terms."""

    name: str
    """The lm-eval task name (``babelmoe_xcsqa_fr``)."""
    path: Path
    """The task YAML (pass it as a task, or its folder as ``--include_path``)."""
    task: str
    """babelmoe's task name (``xcsqa``, ``mgsm-cot``, ``mgsm-direct``, ``udhr-cont``)."""
    lang: str
    """The language the task runs on."""


def template(name: str) -> Path:
    """The shipped template ``name`` (``xcsqa``, ``mgsm``, ``udhr_cont``)."""
    return TEMPLATES / f"{name}.yaml"


def _safe(lang: str) -> str:
    """A language code as it may appear in a task name (letters, digits, ``_``)."""
    cleaned = re.sub(r"[^0-9A-Za-z]+", "_", lang).strip("_")
    if not cleaned:
        raise BabelmoeError(f"language code {lang!r} has no letter or digit", "pass a code")
    return cleaned


def _write_yaml(folder: Path, name: str, config: dict[str, Any]) -> Path:
    path = Path(folder) / f"{name}.yaml"
    atomic_write_text(path, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return path


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    atomic_write_text(path, "".join(lines))
    return path


def _task_yaml(
    folder: Path, name: str, base: str, task: str, lang: str, data: dict[str, Path], **fields
) -> HarnessTask:
    config = {
        "include": str(template(base)),
        "task": name,
        "dataset_kwargs": {"data_files": {split: str(p.resolve()) for split, p in data.items()}},
        **fields,
        "metadata": {"version": VERSION, "babelmoe_task": task, "lang": lang},
    }
    return HarnessTask(name, _write_yaml(folder, name, config), task, lang)


def write_xcsqa_task(folder: Path, source: Path, lang: str) -> HarnessTask:
    """A task on one published X-CSQA JSONL file (validated first; answers required)."""
    xcsqa_items(read_xcsqa(source))  # clear errors for a malformed or unanswered file
    name = f"{PREFIX}_xcsqa_{_safe(lang)}"
    Path(folder).mkdir(parents=True, exist_ok=True)
    return _task_yaml(folder, name, "xcsqa", "xcsqa", lang, {"test": Path(source)})


def write_mgsm_task(
    folder: Path,
    problems: Sequence[MGSMProblem],
    lang: str,
    config: MGSMConfig | None = None,
    exemplars: Sequence[MGSMExemplar] = (),
) -> HarnessTask:
    """A task on MGSM problems of one language (prompts: ``mgsm.mgsm_prompt``; decoding:
    ``config.budget`` new tokens, cut at ``config.stop_strings(lang)``).

    ``lang`` picks the native-language frame (``mgsm.TEMPLATES``); the exemplars, in order, are
    the few-shot split, and ``config.n_shots`` (when > 0) is written as the task's
    ``num_fewshot`` (an explicit ``--num_fewshot`` of the harness overrides it).
    """
    config = config or MGSMConfig()
    if not problems:
        raise BabelmoeError(f"no MGSM problems for {lang}", "check the file")
    if config.n_shots > len(exemplars):
        raise BabelmoeError(
            f"{config.n_shots} shots asked, {len(exemplars)} exemplars given",
            "pass exemplars (read_mgsm_exemplars) or lower n_shots",
        )
    frame = template_for(lang)
    cue = frame.cot if config.mode == "cot" else frame.direct
    name = f"{PREFIX}_mgsm_{config.mode}_{_safe(lang)}"
    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    rows = [
        {"id": p.id, "question": p.question, "answer": "", "answer_number": _number(p.answer)}
        for p in problems
    ]
    data = {"test": _write_jsonl(folder / "data" / f"{name}.test.jsonl", rows)}
    if exemplars:
        shots = [
            {
                "id": f"{lang}-exemplar-{k + 1}",
                "question": e.question,
                "answer": e.reasoning,
                "answer_number": _number(e.answer),
            }
            for k, e in enumerate(exemplars)
        ]
        data["train"] = _write_jsonl(folder / "data" / f"{name}.train.jsonl", shots)
    shown = "{{answer}}" if config.mode == "cot" else "{{answer_number}}"
    return _task_yaml(
        folder,
        name,
        "mgsm",
        config.task,
        lang,
        data,
        doc_to_text=_literal(frame.question) + "{{question}}\n" + _literal(cue),
        target_delimiter="" if cue.endswith("：") else " ",
        generation_kwargs={
            "until": list(config.stop_strings(lang)),
            "max_gen_toks": config.budget,
            "do_sample": False,
        },
        fewshot_config={"sampler": "first_n", "doc_to_target": shown},
        **({} if exemplars else {"fewshot_split": None}),
        **({"num_fewshot": config.n_shots} if config.n_shots else {}),
    )


def write_udhr_cont_task(
    folder: Path, items: Sequence[MultipleChoiceItem], lang: str
) -> HarnessTask:
    """A task on UDHR-Cont items (``build_udhr_continuation_items``) of one language."""
    if not items:
        raise BabelmoeError(f"no UDHR-Cont items for {lang}", "pass more held-out documents")
    delimiters = {item.delimiter for item in items}
    if len(delimiters) != 1:
        raise BabelmoeError(f"UDHR-Cont {lang}: items mix delimiters", "build them in one call")
    name = f"{PREFIX}_udhr_cont_{_safe(lang)}"
    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    rows = [
        {"id": i.id, "context": i.context, "choices": list(i.choices), "gold": i.gold}
        for i in items
    ]
    data = {"test": _write_jsonl(folder / "data" / f"{name}.test.jsonl", rows)}
    return _task_yaml(
        folder, name, "udhr_cont", "udhr-cont", lang, data, target_delimiter=delimiters.pop()
    )


def _number(value: float) -> str:
    return str(as_json_number(value))


def _literal(text: str) -> str:
    """``text`` safe inside a Jinja template (no template syntax in it)."""
    if any(marker in text for marker in ("{{", "{%", "{#")):
        raise BabelmoeError(f"prompt frame {text!r} contains Jinja markers", "change the frame")
    return text
