"""Token-weighted perplexity of a causal LM on a list of documents (one language at a time).

Each document is encoded with BOS (``encode``), so its first real token is predicted from BOS and
BOS itself is never a target. Documents longer than ``max_length`` tokens are cut into windows:

    window 1 = tokens[0 : max_length]                 targets tokens[1 : max_length]
    window j = tokens[end_j - max_length : end_j]     targets the ``stride`` tokens after window j-1
                                                      (fewer in the last window)

so every token after BOS is a target exactly once, and each target of a later window is predicted
from at least ``max_length - stride`` tokens of context. ``stride = max_length - 1`` (the default)
gives disjoint windows (each repeats only the previous window's last token, as input);
a smaller stride buys more context per prediction with more forwards (HF's "sliding window"
perplexity; lm-evaluation-harness's rolling windows are the default case).

The result is token-weighted: ppl = exp(sum of NLL over all targets / number of targets), so long
documents count more. Token counts depend on the tokenizer, so perplexities of one language under
two tokenizers are not comparable; ``bits_per_byte`` (NLL per UTF-8 byte of the text) is.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from babelmoe.errors import BabelmoeError
from babelmoe.evaluate.encoding import encode, pad_token_id
from babelmoe.evaluate.results import TaskResult
from babelmoe.evaluate.scoring import score_tails

logger = logging.getLogger(__name__)

TASK = "perplexity"


@dataclass(frozen=True)
class PerplexityConfig:
    """How documents are cut into windows and batched."""

    max_length: int = 2048
    """Most tokens in one forward (at most the model's context length)."""
    stride: int | None = None
    """New target tokens per window after the first; None: ``max_length - 1`` (disjoint windows)."""
    batch_size: int = 4
    """Windows per forward; lower it if the [batch, max_length, vocab] logits do not fit."""
    add_bos: bool = True
    """Prepend the tokenizer's BOS (strongly recommended; Gemma's perplexity explodes without)."""

    def __post_init__(self) -> None:
        if self.max_length < 2:
            raise BabelmoeError(
                f"max_length must be at least 2 (got {self.max_length})", "pass e.g. 2048"
            )
        if self.stride is not None and not 1 <= self.stride <= self.max_length - 1:
            raise BabelmoeError(
                f"stride must be in [1, max_length - 1 = {self.max_length - 1}] "
                f"(got {self.stride})",
                "leave it unset for disjoint windows",
            )
        if self.batch_size < 1:
            raise BabelmoeError(f"batch_size must be >= 1 (got {self.batch_size})", "pass e.g. 4")

    @property
    def effective_stride(self) -> int:
        """The stride actually used."""
        return self.max_length - 1 if self.stride is None else self.stride


@dataclass(frozen=True)
class Window:
    """One forward's worth of a document: ``tokens[begin:end]``, the last ``n_targets`` scored."""

    begin: int
    end: int
    n_targets: int


def plan_windows(n_tokens: int, max_length: int, stride: int) -> list[Window]:
    """Windows over a sequence of ``n_tokens`` tokens whose targets are tokens 1..n-1, once each."""
    if n_tokens < 2:
        return []
    end = min(max_length, n_tokens)
    windows = [Window(0, end, end - 1)]
    while end < n_tokens:
        new_end = min(end + stride, n_tokens)
        windows.append(Window(max(0, new_end - max_length), new_end, new_end - end))
        end = new_end
    return windows


@dataclass(frozen=True)
class DocumentPerplexity:
    """Per-document totals (``index`` is the position in the input list)."""

    index: int
    nll_sum: float
    n_tokens: int
    n_bytes: int

    @property
    def ppl(self) -> float:
        """exp(mean NLL); NaN for a document with no target token."""
        return math.exp(self.nll_sum / self.n_tokens) if self.n_tokens else math.nan

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ppl": self.ppl}


@dataclass(frozen=True)
class PerplexityResult:
    """Totals over all documents of one language, and the per-document values."""

    nll_sum: float
    """Sum of the negative log-likelihood (nats) of every target token."""
    n_tokens: int
    """Number of target tokens (BOS excluded)."""
    n_bytes: int
    """UTF-8 bytes of all documents."""
    documents: list[DocumentPerplexity] = field(default_factory=list)
    config: PerplexityConfig = field(default_factory=PerplexityConfig)

    @classmethod
    def of_documents(
        cls, documents: list[DocumentPerplexity], config: PerplexityConfig
    ) -> PerplexityResult:
        """The totals of ``documents`` (an exact sum of their log-likelihoods)."""
        return cls(
            nll_sum=math.fsum(d.nll_sum for d in documents),
            n_tokens=sum(d.n_tokens for d in documents),
            n_bytes=sum(d.n_bytes for d in documents),
            documents=documents,
            config=config,
        )

    @property
    def ppl(self) -> float:
        """Token-weighted perplexity exp(nll_sum / n_tokens)."""
        return math.exp(self.nll_sum / self.n_tokens) if self.n_tokens else math.nan

    @property
    def bits_per_byte(self) -> float:
        """nll_sum / (n_bytes ln 2): comparable across tokenizers."""
        return self.nll_sum / (self.n_bytes * math.log(2)) if self.n_bytes else math.nan

    def to_task_result(self, lang: str) -> TaskResult:
        """As a task result (one record per document) for ``write_task_result``."""
        return TaskResult(TASK, lang, self.metrics(), self.documents, {TASK: asdict(self.config)})

    def metrics(self) -> dict[str, float]:
        """The headline numbers, as a task summary stores them."""
        return {
            "ppl": self.ppl,
            "nll_sum": self.nll_sum,
            "n_tokens": self.n_tokens,
            "bits_per_byte": self.bits_per_byte,
            "n_documents": len(self.documents),
        }


def perplexity(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    documents: Sequence[str],
    config: PerplexityConfig | None = None,
    *,
    desc: str = "perplexity",
) -> PerplexityResult:
    """Token-weighted perplexity of ``model`` over ``documents`` (see the module docstring)."""
    config = config or PerplexityConfig()
    if isinstance(documents, str) or not documents:
        raise BabelmoeError(
            "no documents to compute perplexity on", "pass a non-empty list of strings"
        )
    requests: list[tuple[list[int], int]] = []
    owners: list[int] = []
    for index, text in enumerate(documents):
        ids = encode(tokenizer, text, add_bos=config.add_bos)
        for w in plan_windows(len(ids), config.max_length, config.effective_stride):
            requests.append((ids[w.begin : w.end], w.n_targets))
            owners.append(index)
    if not requests:
        raise BabelmoeError(
            f"the {len(documents)} documents hold no token to predict",
            "pass non-empty documents (without BOS, a document needs at least two tokens)",
        )
    logger.debug("perplexity: %d documents, %d windows", len(documents), len(requests))
    scores = score_tails(
        model, requests, batch_size=config.batch_size, pad_id=pad_token_id(tokenizer), desc=desc
    )
    nll = [0.0] * len(documents)
    count = [0] * len(documents)
    for owner, score in zip(owners, scores, strict=True):
        nll[owner] -= score.logprob
        count[owner] += score.n_tokens
    per_doc = [
        DocumentPerplexity(i, nll[i], count[i], len(text.encode("utf-8")))
        for i, text in enumerate(documents)
    ]
    return PerplexityResult.of_documents(per_doc, config)


def perplexity_by_language(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    documents: Mapping[str, Sequence[str]],
    config: PerplexityConfig | None = None,
) -> dict[str, PerplexityResult]:
    """``perplexity`` for each language of ``{language: documents}``, in the mapping's order."""
    results = {}
    for lang, docs in documents.items():
        results[lang] = perplexity(model, tokenizer, docs, config, desc=f"perplexity {lang}")
        logger.info(
            "perplexity %s: %.3f over %d tokens", lang, results[lang].ppl, results[lang].n_tokens
        )
    return results
