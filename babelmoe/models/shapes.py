"""Randomly initialised models built offline from config classes: tiny defaults per family, real
shapes (Llama-2-7B, Llama-3-8B, Mistral-7B ...) for speed benchmarks, and a byte tokenizer. No
downloads. The test builders on top (tiny models, checkpoints) are in ``babelmoe.testing``."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

_TINY_COMMON = {
    "vocab_size": 128,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
}

# Tiny configs per model_type: small enough for CPU unit tests, real modelling code paths.
TINY: dict[str, dict[str, Any]] = {
    "llama": _TINY_COMMON,
    "mistral": _TINY_COMMON,
    "qwen2": _TINY_COMMON,
    "qwen3": {**_TINY_COMMON, "head_dim": 8},
    "gemma": {**_TINY_COMMON, "head_dim": 8},
    "gemma2": {**_TINY_COMMON, "head_dim": 8},
    "gemma3_text": {**_TINY_COMMON, "head_dim": 8, "sliding_window": 16},
    "phi3": _TINY_COMMON,
    "olmo": _TINY_COMMON,
    "olmo2": _TINY_COMMON,
    "gpt2": {
        "vocab_size": 128,
        "n_embd": 32,
        "n_inner": 64,
        "n_layer": 2,
        "n_head": 4,
        "n_positions": 256,
        "bos_token_id": 1,
        "eos_token_id": 2,
    },
    "gpt_neox": {
        "vocab_size": 128,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 256,
        "bos_token_id": 1,
        "eos_token_id": 2,
    },
    "bloom": {
        "vocab_size": 128,
        "hidden_size": 32,
        "n_layer": 2,
        "n_head": 4,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 0,
    },
    "mixtral": {**_TINY_COMMON, "num_local_experts": 4, "num_experts_per_tok": 2},
}

# Real shapes for GPU benchmarks (random weights cost the same time as trained ones).
SHAPES: dict[str, tuple[str, dict[str, Any]]] = {
    "llama2-7b": (
        "llama",
        {
            "vocab_size": 32000,
            "hidden_size": 4096,
            "intermediate_size": 11008,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 32,
        },
    ),
    "llama3-8b": (
        "llama",
        {
            "vocab_size": 128256,
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "rope_theta": 500000.0,
        },
    ),
    "mistral-7b": (
        "mistral",
        {
            "vocab_size": 32000,
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
        },
    ),
    "llama3-70b": (
        "llama",
        {
            "vocab_size": 128256,
            "hidden_size": 8192,
            "intermediate_size": 28672,
            "num_hidden_layers": 80,
            "num_attention_heads": 64,
            "num_key_value_heads": 8,
        },
    ),
    "tiny-llama": (
        "llama",
        {
            **_TINY_COMMON,
            "vocab_size": 512,
            "hidden_size": 64,
            "intermediate_size": 256,
            "num_hidden_layers": 4,
        },
    ),
}


def make_config(model_type: str, **overrides: Any) -> Any:
    """A transformers config of ``model_type`` with the tiny defaults and ``overrides``."""
    from transformers import CONFIG_MAPPING

    values = {**TINY.get(model_type, {}), **overrides}
    return CONFIG_MAPPING[model_type](**values)


def random_model(
    config: Any,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """A randomly initialised causal LM for ``config`` (eval mode)."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def shaped_model(
    shape: str,
    dtype: torch.dtype = torch.bfloat16,
    device: str = "cuda",
    num_hidden_layers: int | None = None,
    attn_implementation: str = "sdpa",
) -> nn.Module:
    """A random model of a named real shape (``SHAPES``), optionally with fewer layers."""
    model_type, values = SHAPES[shape]
    overrides = dict(values)
    if num_hidden_layers is not None:
        overrides["num_hidden_layers"] = num_hidden_layers
    config = make_config(model_type, **overrides)
    config._attn_implementation = attn_implementation
    return random_model(config, dtype=dtype, device=device)


def byte_tokenizer() -> Any:
    """A tokenizer built offline: one token per UTF-8 byte (byte-level BPE without merges), with
    ``<bos>``, ``<eos>`` and ``<pad>``; any text encodes and decodes exactly."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    core = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>"
    )
