"""MGSM (Shi et al. 2022): grade-school maths in 10 languages, by greedy generation.

Published files (google-research/url-nlp, ``mgsm/``):
  ``mgsm_{lang}.tsv``  one problem per line: question TAB integer answer, no header;
  ``exemplars.py``     ``MGSM_EXEMPLARS[lang]["1".."8"] = {"q": "<Question prefix> ...",
                       "a": "<Step-by-Step Answer prefix> ... <The answer is N>."}``. Save that
                       dict as JSON (whole, or one language's part) for ``read_mgsm_exemplars``.
The Hugging Face copy is ``juletxara/mgsm`` (config = language; ``test`` = problems, ``train`` =
the 8 exemplars, with ``question``/``answer``/``answer_number``).

Prompts use the paper's native-language frames (prefixes of the published exemplars; the direct
"Answer:" word is the language's own):

  lang  question      chain of thought             direct
  en    "Question: "  "Step-by-Step Answer:"       "Answer:"
  fr    "Question : " "Réponse étape par étape :"  "Réponse :"
  es    "Pregunta: "  "Respuesta paso a paso:"     "Respuesta:"
  de    "Frage: "     "Schritt-für-Schritt-Antwort:" "Antwort:"
  ru    "Задача: "    "Пошаговое решение:"         "Ответ:"
  zh    "问题："        "逐步解答："                   "答案："
  ja    "問題："        "ステップごとの答え："           "答え："
  bn    "প্রশ্ন: "     "ধাপে ধাপে উত্তর:"            "উত্তর:"
  sw, te, th as in the exemplars; any other language falls back to English.

A prompt is the k exemplars then the problem, blocks separated by a blank line:

  cot:    ("{Q}{exemplar question}\\n{COT} {exemplar reasoning}" + "\\n\\n") * k
          + "{Q}{question}\\n{COT}"
  direct: ("{Q}{exemplar question}\\n{DIRECT} {exemplar answer}" + "\\n\\n") * k
          + "{Q}{question}\\n{DIRECT}"

(no space after a cue ending in a full-width colon, as in the Chinese and Japanese exemplars).

Generation runs in lm-evaluation-harness (``harness_tasks.write_mgsm_task`` writes the task):
greedy, stopping at a blank line (cot) or a newline (direct), or at the next question prefix;
the prediction is the last number of the output (``answers.py``, a filter of the task), scored
by exact match with the gold number.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from babelmoe.errors import BabelmoeError
from babelmoe.evaluate.answers import (
    as_json_number,
    extract_last_number,
    parse_number,
)
from babelmoe.evaluate.readers import read_lines, read_text

logger = logging.getLogger(__name__)

HF_DATASET = "juletxara/mgsm"


@dataclass(frozen=True)
class MGSMTemplate:
    """The native-language frame of a prompt."""

    question: str
    """Put before each question (ends with its own space, if the language uses one)."""
    cot: str
    """Chain-of-thought answer cue ("Step-by-Step Answer:")."""
    direct: str
    """Direct answer cue ("Answer:")."""


TEMPLATES: dict[str, MGSMTemplate] = {
    "en": MGSMTemplate("Question: ", "Step-by-Step Answer:", "Answer:"),
    "fr": MGSMTemplate("Question : ", "Réponse étape par étape :", "Réponse :"),
    "es": MGSMTemplate("Pregunta: ", "Respuesta paso a paso:", "Respuesta:"),
    "de": MGSMTemplate("Frage: ", "Schritt-für-Schritt-Antwort:", "Antwort:"),
    "ru": MGSMTemplate("Задача: ", "Пошаговое решение:", "Ответ:"),
    "zh": MGSMTemplate("问题：", "逐步解答：", "答案："),
    "ja": MGSMTemplate("問題：", "ステップごとの答え：", "答え："),
    "bn": MGSMTemplate("প্রশ্ন: ", "ধাপে ধাপে উত্তর:", "উত্তর:"),
    "sw": MGSMTemplate("Swali: ", "Jibu la Hatua kwa Hatua:", "Jibu:"),
    "te": MGSMTemplate("ప్రశ్న: ", "దశలవారీగా సమాధానం:", "సమాధానం:"),
    "th": MGSMTemplate("โจทย์: ", "คำตอบทีละขั้นตอน:", "คำตอบ:"),
}


def template_for(lang: str) -> MGSMTemplate:
    """The language's template, or English's (logged once) for a language without one."""
    if lang not in TEMPLATES:
        _warn_fallback(lang)
    return TEMPLATES.get(lang, TEMPLATES["en"])


@functools.cache
def _warn_fallback(lang: str) -> None:
    logger.warning("no MGSM template for %r: using the English one", lang)


@dataclass(frozen=True)
class MGSMProblem:
    """One problem: the question text and its numeric answer."""

    id: str
    question: str
    answer: float


@dataclass(frozen=True)
class MGSMExemplar:
    """A worked example, stored without the template's prefixes."""

    question: str
    reasoning: str
    """The step-by-step answer, ending with the answer sentence."""
    answer: float


@dataclass(frozen=True)
class MGSMConfig:
    """How MGSM is prompted and decoded."""

    mode: Literal["cot", "direct"] = "cot"
    """``cot``: step-by-step answer, then the last number; ``direct``: the number at once."""
    n_shots: int = 0
    """Exemplars put before each problem (0..8); needs that many exemplars."""
    max_new_tokens: int | None = None
    """Generation budget; None: 256 for cot, 32 for direct."""
    stop: tuple[str, ...] | None = None
    """Stop strings; None: a blank line (cot) or a newline (direct), and the question prefix."""

    def __post_init__(self) -> None:
        if self.mode not in ("cot", "direct"):
            raise BabelmoeError(f"unknown MGSM mode {self.mode!r}", "use 'cot' or 'direct'")
        if self.n_shots < 0:
            raise BabelmoeError(f"n_shots must be >= 0 (got {self.n_shots})", "pass 0..8")

    @property
    def task(self) -> str:
        """Task name in results: ``mgsm-cot`` or ``mgsm-direct``."""
        return f"mgsm-{self.mode}"

    @property
    def budget(self) -> int:
        """Most tokens generated per problem."""
        return self.max_new_tokens or (256 if self.mode == "cot" else 32)

    def stop_strings(self, lang: str) -> tuple[str, ...]:
        """Where a generation ends (cut before the first of them) for ``lang``."""
        if self.stop is not None:
            return tuple(self.stop)
        return ("\n\n" if self.mode == "cot" else "\n", template_for(lang).question.strip())


def read_mgsm(path: Path | str, lang: str | None = None) -> list[MGSMProblem]:
    """Problems of a published ``mgsm_{lang}.tsv`` (``path`` the file, or its folder + ``lang``)."""
    path = Path(path)
    if path.is_dir():
        if lang is None:
            raise BabelmoeError(f"{path} is a folder", "pass lang= to pick mgsm_{lang}.tsv")
        path = path / f"mgsm_{lang}.tsv"
    prefix = lang or path.stem.removeprefix("mgsm_")
    problems = []
    for number, line in read_lines(path, "MGSM TSV"):
        fields = line.split("\t")
        if len(fields) != 2:
            raise BabelmoeError(
                f"{path}:{number}: expected question TAB answer, found {len(fields)} field(s)",
                "fix that line: one tab between the question and the numeric answer",
            )
        answer = parse_number(fields[1])
        if answer is None:
            raise BabelmoeError(
                f"{path}:{number}: answer {fields[1]!r} is not a number",
                "the second column must be the numeric answer",
            )
        problems.append(MGSMProblem(f"{prefix}-{len(problems) + 1}", fields[0].strip(), answer))
    logger.info("read %d MGSM problems from %s", len(problems), path)
    return problems


def _strip(text: str, prefix: str) -> str:
    prefix = prefix.strip()
    return text.strip()[len(prefix) :].strip() if text.strip().startswith(prefix) else text.strip()


def exemplar(question: str, reasoning: str, lang: str, answer: float | None = None) -> MGSMExemplar:
    """An exemplar from published texts (prefixes removed; answer = last number if not given)."""
    template = template_for(lang)
    reasoning = _strip(reasoning, template.cot)
    value = answer if answer is not None else extract_last_number(reasoning)
    if value is None:
        raise BabelmoeError(f"exemplar {question[:40]!r}... has no numeric answer", "fix it")
    return MGSMExemplar(_strip(question, template.question), reasoning, value)


def read_mgsm_exemplars(path: Path | str, lang: str) -> list[MGSMExemplar]:
    """Exemplars of ``lang`` from a JSON copy of the published ``MGSM_EXEMPLARS``."""
    path = Path(path)
    try:
        data = json.loads(read_text(path, "MGSM exemplars JSON"))
    except json.JSONDecodeError as exc:
        raise BabelmoeError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})", "fix it") from None
    if isinstance(data, dict) and lang in data:
        data = data[lang]
    if not isinstance(data, dict) or not all(
        isinstance(v, dict) and "q" in v and "a" in v for v in data.values()
    ):
        raise BabelmoeError(
            f"{path} is not MGSM_EXEMPLARS for {lang!r}",
            'expected {"<lang>": {"1": {"q": ..., "a": ...}, ...}} or one language\'s part',
        )
    keys = sorted(data, key=lambda k: (0, int(k), "") if k.isdigit() else (1, 0, k))
    return [exemplar(data[k]["q"], data[k]["a"], lang) for k in keys]


def load_mgsm_hf(
    lang: str, split: str = "test", cache_dir: str | None = None
) -> list[MGSMProblem] | list[MGSMExemplar]:
    """``test``: problems; ``train``: the 8 exemplars (needs ``datasets`` and internet)."""
    try:
        import datasets
    except ImportError:
        raise BabelmoeError(
            "reading MGSM from the hub needs the 'datasets' package",
            "pip install 'babelmoe[hf]', or pass the path of the TSV files",
        ) from None
    try:
        rows = datasets.load_dataset(HF_DATASET, lang, split=split, cache_dir=cache_dir)
    except Exception as exc:  # network, unknown config ...: one clear line
        raise BabelmoeError(
            f"could not load {HF_DATASET} {lang} ({exc.__class__.__name__}: {exc})",
            "check the language code and the connection, or pass the path of the TSV files",
        ) from None
    if split == "train":
        return [exemplar(r["question"], r["answer"], lang, r["answer_number"]) for r in rows]
    return [
        MGSMProblem(f"{lang}-{i + 1}", r["question"], float(r["answer_number"]))
        for i, r in enumerate(rows)
    ]


def _space(cue: str) -> str:
    """No space after a full-width colon (Chinese, Japanese), one otherwise."""
    return "" if cue.endswith("：") else " "


def mgsm_prompt(
    question: str, lang: str, mode: str = "cot", exemplars: Sequence[MGSMExemplar] = ()
) -> str:
    """The prompt for one problem (see the module docstring)."""
    t = template_for(lang)
    cue = t.cot if mode == "cot" else t.direct
    blocks = []
    for ex in exemplars:
        shown = ex.reasoning if mode == "cot" else str(as_json_number(ex.answer))
        blocks.append(f"{t.question}{ex.question}\n{cue}{_space(cue)}{shown}")
    blocks.append(f"{t.question}{question}\n{cue}")
    return "\n\n".join(blocks)
