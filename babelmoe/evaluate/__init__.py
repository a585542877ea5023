"""Evaluation: pure functions over a Hugging Face causal LM and its tokenizer.

* ``perplexity`` / ``perplexity_by_language``: token-weighted perplexity on held-out text;
* ``score_multiple_choice``: log-likelihood multiple choice (acc, acc_norm), used by
  X-CSQA (``tasks.xcsqa``) and the project's own UDHR-Cont (``tasks.udhr_continuation``);
* ``generate_greedy`` + ``answers``: generation with numeric answer extraction, used by MGSM
  (``tasks.mgsm``);
* ``TaskResult`` / ``write_task_result``: per-item JSONL beside a summary JSON.

BOS is handled in one place, ``encode``. Nothing here reads the run folder or the CLI; the
runners that do are thin layers over these functions.
"""

from __future__ import annotations

from babelmoe.evaluate.answers import extract_last_number, find_numbers, numbers_equal
from babelmoe.evaluate.encoding import encode
from babelmoe.evaluate.generation import GenerationConfig, generate_greedy
from babelmoe.evaluate.multiple_choice import (
    MultipleChoiceConfig,
    MultipleChoiceItem,
    MultipleChoiceResult,
    score_multiple_choice,
)
from babelmoe.evaluate.perplexity import (
    PerplexityConfig,
    PerplexityResult,
    perplexity,
    perplexity_by_language,
)
from babelmoe.evaluate.results import ItemRecord, TaskResult, read_task_summary, write_task_result
from babelmoe.evaluate.tasks.mgsm import (
    MGSMConfig,
    evaluate_mgsm,
    load_mgsm_hf,
    read_mgsm,
    read_mgsm_exemplars,
)
from babelmoe.evaluate.tasks.udhr_continuation import (
    UDHRContConfig,
    build_udhr_continuation_items,
    evaluate_udhr_continuation,
)
from babelmoe.evaluate.tasks.xcsqa import evaluate_xcsqa, load_xcsqa_hf, read_xcsqa, xcsqa_items

__all__ = [
    "GenerationConfig",
    "ItemRecord",
    "MGSMConfig",
    "MultipleChoiceConfig",
    "MultipleChoiceItem",
    "MultipleChoiceResult",
    "PerplexityConfig",
    "PerplexityResult",
    "TaskResult",
    "UDHRContConfig",
    "build_udhr_continuation_items",
    "encode",
    "evaluate_mgsm",
    "evaluate_udhr_continuation",
    "evaluate_xcsqa",
    "extract_last_number",
    "find_numbers",
    "generate_greedy",
    "load_mgsm_hf",
    "load_xcsqa_hf",
    "numbers_equal",
    "perplexity",
    "perplexity_by_language",
    "read_mgsm",
    "read_mgsm_exemplars",
    "read_task_summary",
    "read_xcsqa",
    "score_multiple_choice",
    "write_task_result",
    "xcsqa_items",
]
