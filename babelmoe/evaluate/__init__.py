"""Evaluation: pure functions over a Hugging Face causal LM and its tokenizer.

* ``perplexity`` / ``perplexity_by_language``: token-weighted perplexity on held-out text;
* ``score_multiple_choice``: log-likelihood multiple choice (acc, acc_norm), used by the
  project's own UDHR-Cont (``tasks.udhr_continuation``), which runs without lm-eval;
* ``harness``: any lm-evaluation-harness task on the loaded model, and the shipped task
  configs (``harness_tasks``) through which X-CSQA and MGSM run (readers and prompts in
  ``tasks.xcsqa`` / ``tasks.mgsm``, MGSM's numeric answer extraction in ``answers``);
* ``TaskResult`` / ``write_task_result``: per-item JSONL beside a summary JSON.

BOS is handled in one place, ``encode``. Nothing here reads the run folder or the CLI; the
runners that do are thin layers over these functions.
"""

from __future__ import annotations

from babelmoe.evaluate.answers import extract_last_number, find_numbers, numbers_equal
from babelmoe.evaluate.encoding import encode
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
    load_mgsm_hf,
    read_mgsm,
    read_mgsm_exemplars,
)
from babelmoe.evaluate.tasks.udhr_continuation import (
    UDHRContConfig,
    build_udhr_continuation_items,
    evaluate_udhr_continuation,
)
from babelmoe.evaluate.tasks.xcsqa import load_xcsqa_hf, read_xcsqa, xcsqa_items

__all__ = [
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
    "evaluate_udhr_continuation",
    "extract_last_number",
    "find_numbers",
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
