"""Greedy generation in batches: left padding, ``max_new_tokens``, stop strings.

Prompts are encoded with ``encode`` (BOS handled in one place), left-padded to the longest prompt
of the batch with an attention mask (transformers derives position ids from the mask, so a padded
prompt generates what it would alone), and decoded greedily with ``model.generate``. A sequence
stops at EOS or as soon as its decoded continuation contains a stop string; the returned text is
cut before the first stop string. Prompts are sorted by length so batches hold similar lengths.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformers import (
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
)

from babelmoe.errors import BabelmoeError
from babelmoe.evaluate.encoding import batches, encode, eval_mode, input_device, pad_token_id

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationConfig:
    """Greedy decoding settings."""

    max_new_tokens: int = 256
    """Most tokens generated per prompt."""
    stop: tuple[str, ...] = ()
    """Strings that end a generation (cut from the returned text)."""
    batch_size: int = 8
    """Prompts per ``generate`` call."""
    add_bos: bool = True
    """Prepend the tokenizer's BOS to every prompt."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise BabelmoeError(
                f"max_new_tokens must be >= 1 (got {self.max_new_tokens})", "pass e.g. 256"
            )
        if self.batch_size < 1:
            raise BabelmoeError(f"batch_size must be >= 1 (got {self.batch_size})", "pass e.g. 8")
        if any(not s for s in self.stop):
            raise BabelmoeError("an empty stop string would stop at once", "drop it")


class _StopOnStrings(StoppingCriteria):
    """Done per sequence once its decoded continuation holds a stop string."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, stop: Sequence[str], prompt_len: int):
        self.tokenizer, self.stop, self.prompt_len = tokenizer, tuple(stop), prompt_len

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs
    ) -> torch.BoolTensor:
        texts = self.tokenizer.batch_decode(
            input_ids[:, self.prompt_len :], skip_special_tokens=True
        )
        done = [any(s in text for s in self.stop) for text in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any stop string."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]


@torch.inference_mode()
def generate_greedy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    config: GenerationConfig | None = None,
    *,
    desc: str = "generating",
) -> list[str]:
    """Greedy continuations of ``prompts`` (in order), cut at the first stop string."""
    config = config or GenerationConfig()
    encoded = [encode(tokenizer, p, add_bos=config.add_bos) for p in prompts]
    if any(not ids for ids in encoded):
        raise BabelmoeError("an empty prompt and no BOS token to start from", "give a prompt")
    pad = pad_token_id(tokenizer)
    device = input_device(model)
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    outputs: list[str] = [""] * len(prompts)
    n_batches = -(-len(order) // config.batch_size)
    with eval_mode(model):
        for idx in tqdm(
            batches(order, config.batch_size), total=n_batches, desc=desc, disable=None
        ):
            width = len(encoded[idx[0]])
            input_ids = torch.full((len(idx), width), pad, dtype=torch.long)
            attention_mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                input_ids[row, width - len(encoded[i]) :] = torch.as_tensor(encoded[i])
                attention_mask[row, width - len(encoded[i]) :] = 1
            criteria = StoppingCriteriaList(
                [_StopOnStrings(tokenizer, config.stop, width)] if config.stop else []
            )
            generated = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                max_new_tokens=config.max_new_tokens,
                do_sample=False,
                num_beams=1,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=pad,
                eos_token_id=tokenizer.eos_token_id,
                stopping_criteria=criteria,
            )  # [batch, width + new]
            texts = tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True)
            for i, text in zip(idx, texts, strict=True):
                outputs[i] = truncate_at_stop(text, config.stop)
    logger.info("generated %d continuations", len(prompts))
    return outputs
