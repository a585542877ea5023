"""The architecture table: where each model family keeps its decoder layers and FFN projections.

One declarative ``Architecture`` per family, keyed by the Hugging Face ``config.model_type``.
Every stage reaches the FFN through this table and ``babelmoe.models.ffn``; nothing else in the
package branches on the model family. Users add a family without editing the package with
``register_architecture`` (Python) or a JSON file passed as ``--architectures FILE`` /
``BABELMOE_ARCHITECTURES`` (a mapping ``model_type -> Architecture fields``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from babelmoe.errors import BabelmoeError, closest


@dataclass(frozen=True)
class Architecture:
    """Where a family's FFN lives, as module paths relative to the ``*ForCausalLM`` root.

    Attributes:
        layers: candidate dotted paths to the ``ModuleList`` of decoder layers; the first that
            exists is used (paths moved between transformers versions for some families).
        mlp: dotted path, inside one decoder layer, to the FFN module.
        up: attribute of the FFN holding the input projection (for ``fused_gate_up`` the fused
            gate+up projection).
        down: attribute of the FFN holding the output projection; its input is the intermediate
            activation ``h`` that profiling scores.
        gate: attribute of the gate projection of a gated FFN (GLU), or None.
        fused_gate_up: ``up`` computes ``[gate; up]`` in one matrix, gate rows first (Phi-3).
        conv1d: the projections are GPT-2 ``Conv1D`` (weight stored ``[in, out]``).
        width_config_key: the config field holding the FFN width, or None when the family
            derives it (BLOOM: 4 x hidden) and a narrower model needs babelmoe's loader.
    """

    layers: tuple[str, ...]
    mlp: str
    up: str
    down: str
    gate: str | None = None
    fused_gate_up: bool = False
    conv1d: bool = False
    width_config_key: str | None = "intermediate_size"

    @property
    def gated(self) -> bool:
        """Whether the FFN is a GLU (a gate multiplies the up projection)."""
        return self.gate is not None or self.fused_gate_up


_LLAMA_LIKE = Architecture(
    layers=("model.layers",), mlp="mlp", up="up_proj", gate="gate_proj", down="down_proj"
)

ARCHITECTURES: dict[str, Architecture] = {
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
    "qwen3": _LLAMA_LIKE,
    "gemma": _LLAMA_LIKE,
    "gemma2": _LLAMA_LIKE,
    "gemma3_text": _LLAMA_LIKE,
    "gemma3": Architecture(
        layers=("model.language_model.layers", "language_model.model.layers"),
        mlp="mlp",
        up="up_proj",
        gate="gate_proj",
        down="down_proj",
    ),
    "olmo": _LLAMA_LIKE,
    "olmo2": _LLAMA_LIKE,
    "phi3": Architecture(
        layers=("model.layers",),
        mlp="mlp",
        up="gate_up_proj",
        down="down_proj",
        fused_gate_up=True,
    ),
    "gpt2": Architecture(
        layers=("transformer.h",),
        mlp="mlp",
        up="c_fc",
        down="c_proj",
        conv1d=True,
        width_config_key="n_inner",
    ),
    "gpt_neox": Architecture(
        layers=("gpt_neox.layers",), mlp="mlp", up="dense_h_to_4h", down="dense_4h_to_h"
    ),
    "bloom": Architecture(
        layers=("transformer.h",),
        mlp="mlp",
        up="dense_h_to_4h",
        down="dense_4h_to_h",
        width_config_key=None,
    ),
}

# Families whose FFNs are already mixtures of experts: splitting them again is not meaningful.
NATIVE_MOE = {
    "mixtral",
    "qwen2_moe",
    "qwen3_moe",
    "olmoe",
    "deepseek_v2",
    "deepseek_v3",
    "dbrx",
    "jamba",
    "gpt_oss",
    "llama4",
    "llama4_text",
    "phimoe",
    "granitemoe",
    "jetmoe",
    "switch_transformers",
    "nllb_moe",
    "minimax",
    "qwen3_next",
    "glm4_moe",
    "ernie4_5_moe",
    "hunyuan_v1_moe",
    "dots1",
    "bailing_moe",
    "flex_olmo",
}


def register_architecture(model_type: str, architecture: Architecture) -> None:
    """Add or replace the entry for ``model_type`` (``config.model_type``)."""
    ARCHITECTURES[model_type] = architecture


def architecture_from_dict(entry: dict[str, Any]) -> Architecture:
    """Build an ``Architecture`` from JSON-like data, with a clear error for unknown fields."""
    known = {f.name for f in fields(Architecture)}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise BabelmoeError(
            f"unknown architecture field(s): {', '.join(unknown)}",
            f"use only {', '.join(sorted(known))}",
        )
    data = dict(entry)
    if isinstance(data.get("layers"), str):
        data["layers"] = (data["layers"],)
    data["layers"] = tuple(data.get("layers", ()))
    try:
        return Architecture(**data)
    except TypeError as exc:
        raise BabelmoeError(
            f"incomplete architecture entry: {exc}", "give layers, mlp, up, down"
        ) from None


def register_from_file(path: str | Path) -> list[str]:
    """Register every entry of a JSON file ``{model_type: {field: value}}``; returns the types."""
    path = Path(path)
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BabelmoeError(
            f"no such architectures file: {path}", "pass an existing JSON file"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BabelmoeError(f"{path} is not valid JSON ({exc})", "fix the file") from None
    if not isinstance(table, dict):
        raise BabelmoeError(f"{path} must hold a JSON object", "map model_type to fields")
    for model_type, entry in table.items():
        register_architecture(model_type, architecture_from_dict(entry))
    return list(table)


def _register_from_environment() -> None:
    extra = os.environ.get("BABELMOE_ARCHITECTURES")
    if extra:
        register_from_file(extra)


def _model_type_of(config: Any) -> str:
    return str(getattr(config, "model_type", "") or "")


def resolve_architecture(config: Any) -> Architecture:
    """The table entry for a model config, or a clear error (unknown family, native MoE)."""
    _register_from_environment()
    model_type = _model_type_of(config)
    n_experts = getattr(config, "num_local_experts", None) or getattr(config, "num_experts", None)
    if model_type in NATIVE_MOE or (isinstance(n_experts, int) and n_experts > 1):
        raise BabelmoeError(
            f"{model_type or 'this model'} is already a mixture-of-experts model",
            "babelmoe splits dense FFNs; use a dense model (e.g. Mistral rather than Mixtral)",
        )
    if model_type not in ARCHITECTURES:
        close = closest(str(model_type), ARCHITECTURES)
        hint = f"did you mean {close!r}? " if close else ""
        raise BabelmoeError(
            f"unknown architecture {model_type!r} (known: {', '.join(sorted(ARCHITECTURES))})",
            f"{hint}register it with babelmoe.models.register_architecture or --architectures "
            "FILE",
        )
    return ARCHITECTURES[model_type]
