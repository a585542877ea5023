"""Multiple choice by log-likelihood, as lm-evaluation-harness scores its multiple-choice tasks.

For an item with context c and choices x_1..x_K, each choice is scored as

    ll_i = sum over the tokens of (delimiter + x_i) of log p(token | BOS, c, earlier tokens)

Tokenisation follows the harness: trailing whitespace of the context moves to the continuation,
the context is encoded alone (with BOS) and the continuation is what encoding context +
continuation adds after it, so tokens merging across the boundary stay with the continuation.

Metrics:
  acc       share of items where argmax_i ll_i is the gold choice;
  acc_norm  share where argmax_i ll_i / len(x_i) is gold, ``len`` counting the characters of the
            choice text without the delimiter (the harness's ``acc_norm``: a length
            normalisation by characters, not tokens, so it does not depend on the tokenizer).
Ties go to the lowest index (numpy's argmax, as in the harness).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from babelmoe.errors import BabelmoeError
from babelmoe.evaluate.encoding import encode, pad_token_id
from babelmoe.evaluate.results import ItemRecord, TaskResult, accuracy_stderr
from babelmoe.evaluate.scoring import score_tails

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MultipleChoiceItem:
    """One question: a context, the choices that may follow it, and the gold index."""

    id: str
    """Identifier carried into the per-item records."""
    context: str
    """The prompt every choice continues, e.g. ``"Question: ...\\nAnswer:"``."""
    choices: tuple[str, ...]
    """The choice texts, without the delimiter."""
    gold: int
    """Index of the correct choice."""
    delimiter: str = " "
    """Inserted between context and each choice (``""`` for scripts written without spaces)."""

    def __post_init__(self) -> None:
        if len(self.choices) < 2:
            raise BabelmoeError(f"item {self.id}: fewer than two choices", "give every item 2+")
        if not 0 <= self.gold < len(self.choices):
            raise BabelmoeError(
                f"item {self.id}: gold index {self.gold} outside 0..{len(self.choices) - 1}",
                "fix the item's answer",
            )
        if any(not choice for choice in self.choices):
            raise BabelmoeError(f"item {self.id}: an empty choice", "drop or fix the item")


@dataclass(frozen=True)
class MultipleChoiceConfig:
    """Batching and truncation of multiple-choice scoring."""

    batch_size: int = 16
    """Sequences (item x choice) per forward."""
    max_length: int | None = None
    """Longest scored sequence; longer contexts lose tokens on the left (BOS kept). None: no cut."""
    add_bos: bool = True
    """Prepend the tokenizer's BOS to every context."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise BabelmoeError(f"batch_size must be >= 1 (got {self.batch_size})", "pass e.g. 16")
        if self.max_length is not None and self.max_length < 2:
            raise BabelmoeError(f"max_length must be >= 2 (got {self.max_length})", "or None")


@dataclass(frozen=True)
class MultipleChoiceOutcome:
    """Scores of one item."""

    id: str
    gold: int
    loglikelihoods: tuple[float, ...]
    """Summed log-probability of each choice's tokens."""
    choice_chars: tuple[int, ...]
    """Characters of each choice (the acc_norm denominator)."""
    choice_tokens: tuple[int, ...]
    """Tokens of each continuation."""

    @property
    def prediction(self) -> int:
        return _argmax(self.loglikelihoods)

    @property
    def prediction_norm(self) -> int:
        return _argmax(
            [ll / n for ll, n in zip(self.loglikelihoods, self.choice_chars, strict=True)]
        )

    def record(self) -> ItemRecord:
        return ItemRecord(
            id=self.id,
            prediction=self.prediction,
            gold=self.gold,
            correct=self.prediction == self.gold,
            scores={
                "prediction_norm": self.prediction_norm,
                "correct_norm": self.prediction_norm == self.gold,
                "loglikelihoods": list(self.loglikelihoods),
                "choice_chars": list(self.choice_chars),
                "choice_tokens": list(self.choice_tokens),
            },
        )


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))


@dataclass(frozen=True)
class MultipleChoiceResult:
    """All outcomes of one run."""

    outcomes: list[MultipleChoiceOutcome]

    @property
    def acc(self) -> float:
        return sum(o.prediction == o.gold for o in self.outcomes) / len(self.outcomes)

    @property
    def acc_norm(self) -> float:
        return sum(o.prediction_norm == o.gold for o in self.outcomes) / len(self.outcomes)

    def metrics(self) -> dict[str, float]:
        """acc and acc_norm with their standard errors, the item count and the chance level."""
        n = len(self.outcomes)
        chance = sum(1 / len(o.loglikelihoods) for o in self.outcomes) / n
        return {
            "acc": self.acc,
            "acc_stderr": accuracy_stderr(self.acc, n),
            "acc_norm": self.acc_norm,
            "acc_norm_stderr": accuracy_stderr(self.acc_norm, n),
            "n": n,
            "chance": chance,
        }

    def to_task_result(self, task: str, lang: str, config: dict | None = None) -> TaskResult:
        return TaskResult(
            task=task,
            lang=lang,
            metrics=self.metrics(),
            records=[o.record() for o in self.outcomes],
            config=config or {},
        )


def encode_pair(
    tokenizer: PreTrainedTokenizerBase, context: str, continuation: str, add_bos: bool = True
) -> tuple[list[int], list[int]]:
    """(context ids with BOS, continuation ids), split as lm-evaluation-harness splits them."""
    n_space = len(context) - len(context.rstrip())
    if n_space:
        continuation = context[-n_space:] + continuation
        context = context[:-n_space]
    whole = encode(tokenizer, context + continuation, add_bos=add_bos)
    context_ids = encode(tokenizer, context, add_bos=add_bos)
    return context_ids, whole[len(context_ids) :]


def _request(
    item: MultipleChoiceItem, choice: str, tokenizer: PreTrainedTokenizerBase, config
) -> tuple[list[int], int]:
    context_ids, cont_ids = encode_pair(
        tokenizer, item.context, item.delimiter + choice, add_bos=config.add_bos
    )
    if not context_ids:
        raise BabelmoeError(
            f"item {item.id}: empty context and the tokenizer has no BOS to predict from",
            "give the item a context",
        )
    if not cont_ids:
        raise BabelmoeError(f"item {item.id}: choice {choice!r} encodes to no token", "fix it")
    limit = config.max_length
    if limit is not None and len(context_ids) + len(cont_ids) > limit:
        if len(cont_ids) >= limit:
            raise BabelmoeError(
                f"item {item.id}: a choice of {len(cont_ids)} tokens does not fit "
                f"max_length={limit}",
                "raise max_length",
            )
        keep = limit - len(cont_ids)
        bos = context_ids[:1] if config.add_bos and tokenizer.bos_token_id is not None else []
        context_ids = bos + context_ids[len(context_ids) - (keep - len(bos)) :]
    return context_ids + cont_ids, len(cont_ids)


def score_multiple_choice(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    items: Sequence[MultipleChoiceItem],
    config: MultipleChoiceConfig | None = None,
    *,
    desc: str = "multiple choice",
) -> MultipleChoiceResult:
    """Score every choice of every item by log-likelihood (see the module docstring)."""
    config = config or MultipleChoiceConfig()
    if not items:
        raise BabelmoeError("no multiple-choice items to score", "check the task data")
    requests, owners = [], []
    for index, item in enumerate(items):
        for choice in item.choices:
            requests.append(_request(item, choice, tokenizer, config))
            owners.append(index)
    logger.debug("multiple choice: %d items, %d sequences", len(items), len(requests))
    scores = score_tails(
        model, requests, batch_size=config.batch_size, pad_id=pad_token_id(tokenizer), desc=desc
    )
    per_item: list[list] = [[] for _ in items]
    for owner, score in zip(owners, scores, strict=True):
        per_item[owner].append(score)
    outcomes = [
        MultipleChoiceOutcome(
            id=item.id,
            gold=item.gold,
            loglikelihoods=tuple(s.logprob for s in item_scores),
            choice_chars=tuple(len(c) for c in item.choices),
            choice_tokens=tuple(s.n_tokens for s in item_scores),
        )
        for item, item_scores in zip(items, per_item, strict=True)
    ]
    return MultipleChoiceResult(outcomes)
