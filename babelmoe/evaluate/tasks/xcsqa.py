"""X-CSQA (X-CSR, Lin et al. 2021): multilingual CommonsenseQA, scored by log-likelihood.

Published format: one JSONL file per language and split, ``X-CSQA/{lang}/{split}.jsonl``
(splits ``dev`` and ``test``; Japanese is ``jap``), one question per line:

    {"id": "...", "lang": "fr",
     "question": {"stem": "...", "choices": [{"label": "A", "text": "..."}, ...]},
     "answerKey": "A"}

The test split has no ``answerKey``: it can be read but not scored for accuracy. The Hugging Face
copy (``INK-USC/xcsr``, config ``X-CSQA-{lang}``, splits ``validation``/``test``) stores the
choices as ``{"label": [...], "text": [...]}``; both shapes are accepted.

Scored through lm-evaluation-harness with the shipped config (``harness_tasks/xcsqa.yaml``,
written per file by ``harness_tasks.write_xcsqa_task``); ``xcsqa_items`` gives the same items to
babelmoe's own ``score_multiple_choice``. Prompt (zero-shot, English frame for every language,
as in the harness's CSQA-style tasks):

    context = "Question: {stem}\\nAnswer:"    continuation = " {choice text}"
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babelmoe.errors import BabelmoeError
from babelmoe.evaluate.multiple_choice import (
    MultipleChoiceItem,
)
from babelmoe.evaluate.readers import read_jsonl, require_field

logger = logging.getLogger(__name__)

TASK = "xcsqa"
TEMPLATE = "Question: {stem}\nAnswer:"
HF_DATASET = "INK-USC/xcsr"
# Codes the published data spells differently from ISO 639-1.
LANG_FOLDERS = {"ja": "jap"}
HF_SPLITS = {"dev": "validation", "validation": "validation", "test": "test"}


@dataclass(frozen=True)
class XCSQAQuestion:
    """One X-CSQA question as published."""

    id: str
    lang: str
    stem: str
    labels: tuple[str, ...]
    choices: tuple[str, ...]
    answer_key: str | None
    """Label of the correct choice; None in the test split."""


def parse_question(obj: dict[str, Any], where: str) -> XCSQAQuestion:
    """One record (a JSONL line or a Hugging Face row) as an ``XCSQAQuestion``."""
    question = require_field(obj, "question", dict, where)
    stem = require_field(question, "stem", str, where)
    raw = require_field(question, "choices", (list, dict), where)
    if isinstance(raw, dict):  # Hugging Face: {"label": [...], "text": [...]}
        labels, texts = list(raw.get("label", [])), list(raw.get("text", []))
    else:
        if not all(isinstance(c, dict) and "label" in c and "text" in c for c in raw):
            raise BabelmoeError(
                f"{where}: every choice needs a 'label' and a 'text'", "fix the record"
            )
        labels, texts = [c["label"] for c in raw], [c["text"] for c in raw]
    if len(labels) != len(texts) or len(labels) < 2:
        raise BabelmoeError(f"{where}: expected 2+ choices with one label each", "fix the record")
    answer = obj.get("answerKey") or None
    if answer is not None and answer not in labels:
        raise BabelmoeError(
            f"{where}: answerKey {answer!r} is not one of the labels {labels}", "fix the record"
        )
    return XCSQAQuestion(
        id=str(obj.get("id", where)),
        lang=str(obj.get("lang", "")),
        stem=stem,
        labels=tuple(str(x) for x in labels),
        choices=tuple(str(x) for x in texts),
        answer_key=answer,
    )


def resolve_path(path: Path | str, lang: str | None, split: str) -> Path:
    """A JSONL file as given, or ``{folder}/{lang}/{split}.jsonl`` for a dataset folder."""
    path = Path(path)
    if path.is_dir():
        if lang is None:
            raise BabelmoeError(f"{path} is a folder", "pass lang= to pick {lang}/{split}.jsonl")
        for code in (lang, LANG_FOLDERS.get(lang, lang)):
            candidate = path / code / f"{split}.jsonl"
            if candidate.is_file():
                return candidate
        return path / lang / f"{split}.jsonl"  # read_lines reports it missing
    return path


def read_xcsqa(
    path: Path | str, lang: str | None = None, split: str = "dev"
) -> list[XCSQAQuestion]:
    """Questions of a published X-CSQA JSONL file (or of ``{folder}/{lang}/{split}.jsonl``)."""
    file = resolve_path(path, lang, split)
    questions = [parse_question(obj, where) for where, obj in read_jsonl(file, "X-CSQA JSONL")]
    logger.info("read %d X-CSQA questions from %s", len(questions), file)
    return questions


def load_xcsqa_hf(
    lang: str, split: str = "dev", cache_dir: str | None = None
) -> list[XCSQAQuestion]:
    """Questions from the Hugging Face hub (needs ``datasets`` and internet)."""
    try:
        import datasets
    except ImportError:
        raise BabelmoeError(
            "reading X-CSQA from the hub needs the 'datasets' package",
            "pip install 'babelmoe[hf]', or pass the path of the JSONL files",
        ) from None
    config = f"X-CSQA-{LANG_FOLDERS.get(lang, lang)}"
    try:
        rows = datasets.load_dataset(
            HF_DATASET, config, split=HF_SPLITS.get(split, split), cache_dir=cache_dir
        )
    except Exception as exc:  # network, unknown config ...: one clear line
        raise BabelmoeError(
            f"could not load {HF_DATASET} {config} ({exc.__class__.__name__}: {exc})",
            "check the language code and the connection, or pass the path of the JSONL files",
        ) from None
    return [parse_question(dict(row), f"{HF_DATASET}/{config}[{i}]") for i, row in enumerate(rows)]


def xcsqa_items(
    questions: Sequence[XCSQAQuestion], template: str = TEMPLATE
) -> list[MultipleChoiceItem]:
    """Multiple-choice items for accuracy; refuses questions without an answer (the test split)."""
    if not questions:
        raise BabelmoeError("no X-CSQA questions", "check the file")
    unanswered = [q.id for q in questions if q.answer_key is None]
    if unanswered:
        raise BabelmoeError(
            f"{len(unanswered)} of {len(questions)} X-CSQA questions have no answerKey "
            f"(e.g. {unanswered[0]}); the test split's answers are hidden",
            "evaluate on the dev split",
        )
    return [
        MultipleChoiceItem(
            id=q.id,
            context=template.format(stem=q.stem),
            choices=q.choices,
            gold=q.labels.index(q.answer_key),  # type: ignore[arg-type]
        )
        for q in questions
    ]
