"""Tokenisation and model plumbing shared by every evaluation: BOS handling lives here only.

Tokenizers disagree about special tokens: Llama's adds BOS, Gemma's GGUF tokenizer adds it in some
transformers versions and not in others, byte-level BPE tokenizers never do. ``encode`` ignores
whatever the tokenizer would add and prepends ``tokenizer.bos_token_id`` itself when one is set,
so every task sees the same token sequence whatever the transformers version.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase


def encode(tokenizer: PreTrainedTokenizerBase, text: str, add_bos: bool = True) -> list[int]:
    """Token ids of ``text`` without the tokenizer's own special tokens, BOS first if asked.

    BOS is prepended only when ``add_bos`` is true and the tokenizer defines ``bos_token_id``.
    """
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    bos = tokenizer.bos_token_id
    if add_bos and bos is not None:
        ids.insert(0, int(bos))
    return ids


def encode_texts(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], chunk: int = 256
) -> Iterator[list[int]]:
    """``encode(tokenizer, text, add_bos=False)`` of every text, in order, lazily: ``chunk``
    texts per tokenizer call (a fast tokenizer encodes a list in parallel threads), so a caller
    that stops early (a token budget reached) leaves the rest of a large corpus unencoded."""
    for start in range(0, len(texts), chunk):
        encoded = tokenizer(texts[start : start + chunk], add_special_tokens=False)["input_ids"]
        for ids in encoded:
            yield list(ids)


def pad_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id used to fill padded positions (masked out, so any valid id works).

    The tokenizer's pad token, else its EOS token, else 0.
    """
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def input_device(model: PreTrainedModel) -> torch.device:
    """Where input ids must live: the input embeddings' device (the first of a split model)."""
    return model.get_input_embeddings().weight.device


@contextlib.contextmanager
def eval_mode(model: PreTrainedModel) -> Iterator[PreTrainedModel]:
    """Put ``model`` in eval mode (no dropout) for the block; restore its previous mode after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def batches(order: list[int], batch_size: int) -> Iterator[list[int]]:
    """Consecutive slices of ``order`` holding at most ``batch_size`` indices."""
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
