"""UDHR-Cont: babelmoe's own offline multilingual multiple-choice task (not X-CSQA, not a benchmark
from the literature).

Neither X-CSQA nor MGSM can be had offline, so this task is built from parallel text, in babelmoe
from the UDHR articles, but any list of documents of one language works:

* texts: every document (``segment="document"``) or every sentence (``"sentence"``: more, shorter
  items) holding at least ``min_units`` units;
* units: whitespace-separated words, or characters for scripts written without spaces
  (``unit="auto"`` picks characters when the language's documents average more than
  ``AUTO_CHARS_PER_WORD`` characters per whitespace-separated token: Chinese, Japanese, Thai ...);
* an item: context = the first half of a text (floor(n/2) units), gold = the second half; the
  K-1 distractors are second halves of texts from *other documents*, drawn from the
  ``pool_factor * (K-1)`` closest to the gold in length (units), never equal to the gold text;
  the gold's position is drawn uniformly;
* deterministic: item i's draws come from ``random.Random(f"{seed}:{lang}:{i}")``, so the items
  depend only on the documents, the config and the language code.

Scored by log-likelihood like any multiple-choice task (``acc``, ``acc_norm``; ``chance`` = 1/K).
What it measures: whether the model prefers the true continuation of a text in that language
over fluent text of the same language and length: a mix of fluency, agreement and topic
coherence. The UDHR is in most pretraining corpora, so part of it can be recall; that is fine for
comparing a pruned model with its dense parent, less so for comparing unrelated models.
"""

from __future__ import annotations

import logging
import random
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from babelmoe.errors import BabelmoeError
from babelmoe.evaluate.multiple_choice import (
    MultipleChoiceConfig,
    MultipleChoiceItem,
    score_multiple_choice,
)
from babelmoe.evaluate.results import TaskResult

logger = logging.getLogger(__name__)

TASK = "udhr-cont"
AUTO_CHARS_PER_WORD = 12.0
_SENTENCE_END = re.compile(r"(?<=[.!?।॥۔؟])\s+|(?<=[。！？])")


@dataclass(frozen=True)
class UDHRContConfig:
    """How items are cut from the documents."""

    n_choices: int = 4
    """Choices per item (the gold and n_choices - 1 distractors)."""
    seed: int = 0
    """Seed of the distractor and gold-position draws."""
    unit: Literal["auto", "words", "chars"] = "auto"
    """What "half" counts: whitespace-separated words, characters, or pick per language."""
    segment: Literal["document", "sentence"] = "document"
    """Build one item per document or one per sentence."""
    min_units: int = 8
    """Texts shorter than this (in units; in characters it is doubled) are skipped."""
    pool_factor: int = 3
    """Distractors are drawn from the pool_factor * (n_choices - 1) texts closest in length."""
    max_items: int | None = None
    """Keep only the first max_items items (None: all)."""

    def __post_init__(self) -> None:
        if self.n_choices < 2:
            raise BabelmoeError(f"n_choices must be >= 2 (got {self.n_choices})", "pass e.g. 4")
        if self.unit not in ("auto", "words", "chars"):
            raise BabelmoeError(f"unknown unit {self.unit!r}", "use auto, words or chars")
        if self.segment not in ("document", "sentence"):
            raise BabelmoeError(f"unknown segment {self.segment!r}", "use document or sentence")
        if self.min_units < 2 or self.pool_factor < 1:
            raise BabelmoeError("min_units must be >= 2 and pool_factor >= 1", "fix the config")


@dataclass(frozen=True)
class _Text:
    document: int
    context: str
    continuation: str
    length: int  # units in the continuation


def choose_unit(documents: Sequence[str]) -> Literal["words", "chars"]:
    """Characters for scripts without spaces (long whitespace tokens on average), else words."""
    tokens = [t for doc in documents for t in doc.split()]
    chars = sum(len(t) for t in tokens)
    return "chars" if tokens and chars / len(tokens) > AUTO_CHARS_PER_WORD else "words"


def _split_half(text: str, unit: str, min_units: int) -> tuple[str, str, int] | None:
    """(first half, second half, units in the second half), or None when too short."""
    if unit == "words":
        words = text.split()
        if len(words) < min_units:
            return None
        half = len(words) // 2
        return " ".join(words[:half]), " ".join(words[half:]), len(words) - half
    text = " ".join(text.split())
    if len(text) < 2 * min_units:
        return None
    half = len(text) // 2
    while half < len(text) and unicodedata.category(text[half]) in ("Mn", "Mc", "Me"):
        half += 1  # never start the continuation with a combining mark
    if half >= len(text):
        return None
    return text[:half], text[half:], len(text) - half


def _texts(documents: Sequence[str], config: UDHRContConfig, unit: str) -> list[_Text]:
    texts = []
    for index, doc in enumerate(documents):
        parts = _SENTENCE_END.split(doc) if config.segment == "sentence" else [doc]
        for part in parts:
            halves = _split_half(part, unit, config.min_units)
            if halves is not None:
                texts.append(_Text(index, *halves))
    return texts


def build_udhr_continuation_items(
    documents: Sequence[str], lang: str, config: UDHRContConfig | None = None
) -> list[MultipleChoiceItem]:
    """The items of one language (see the module docstring)."""
    config = config or UDHRContConfig()
    if isinstance(documents, str) or not documents:
        raise BabelmoeError(f"no documents for {lang}", "pass a non-empty list of strings")
    unit = choose_unit(documents) if config.unit == "auto" else config.unit
    texts = _texts(documents, config, unit)
    n_distractors = config.n_choices - 1
    items = []
    for i, gold in enumerate(texts):
        rng = random.Random(f"{config.seed}:{lang}:{i}")
        seen = {gold.continuation}
        candidates = []
        for other in texts:
            if other.document != gold.document and other.continuation not in seen:
                seen.add(other.continuation)
                candidates.append(other)
        if len(candidates) < n_distractors:
            raise BabelmoeError(
                f"{lang}: only {len(candidates)} distinct continuations from other documents "
                f"for {n_distractors} distractors",
                "pass more documents, segment='sentence', or fewer n_choices",
            )
        keyed = sorted(candidates, key=lambda t: (abs(t.length - gold.length), rng.random()))
        pool = keyed[: config.pool_factor * n_distractors]
        distractors = [t.continuation for t in rng.sample(pool, n_distractors)]
        position = rng.randrange(config.n_choices)
        choices = [*distractors[:position], gold.continuation, *distractors[position:]]
        items.append(
            MultipleChoiceItem(
                id=f"{lang}-{i:04d}",
                context=gold.context,
                choices=tuple(choices),
                gold=position,
                delimiter=" " if unit == "words" else "",
            )
        )
    if config.max_items is not None:
        items = items[: config.max_items]
    if not items:
        raise BabelmoeError(
            f"{lang}: no document holds {config.min_units}+ {unit}", "lower min_units"
        )
    logger.info("%s %s: %d items (%s, %s)", TASK, lang, len(items), unit, config.segment)
    return items


def evaluate_udhr_continuation(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    documents: Sequence[str],
    lang: str,
    config: UDHRContConfig | None = None,
    scoring: MultipleChoiceConfig | None = None,
) -> TaskResult:
    """acc / acc_norm of ``model`` on UDHR-Cont items built from ``documents``."""
    config = config or UDHRContConfig()
    scoring = scoring or MultipleChoiceConfig()
    items = build_udhr_continuation_items(documents, lang, config)
    result = score_multiple_choice(model, tokenizer, items, scoring, desc=f"{TASK} {lang}")
    unit = choose_unit(documents) if config.unit == "auto" else config.unit
    return result.to_task_result(
        TASK, lang, {"task": asdict(config), "unit": unit, "scoring": asdict(scoring)}
    )
