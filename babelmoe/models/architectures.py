"""The architecture table: where each model family keeps its decoder layers and FFN projections.

One declarative ``Architecture`` per family, keyed by the Hugging Face ``config.model_type``.
Every stage reaches the FFN through this table and ``babelmoe.models.ffn``; nothing else in the
package branches on the model family. Users add a family without editing the package with
``register_architecture`` (Python) or a JSON file passed as ``--architectures FILE`` /
``BABELMOE_ARCHITECTURES`` (a mapping ``model_type -> Architecture fields``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from babelmoe.errors import BabelmoeError, closest

logger = logging.getLogger(__name__)


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

BUILT_IN: dict[str, Architecture] = dict(ARCHITECTURES)
"""The table as shipped: a user's file that redefines one of these is warned about."""
USER_REGISTERED: set[str] = set()
"""Model types registered by the user (Python or file): checked against the model's config."""

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
    if not isinstance(architecture, Architecture):
        raise BabelmoeError(
            f"the entry for {model_type!r} is a {type(architecture).__name__}, not an Architecture",
            "pass babelmoe.models.Architecture(...)",
        )
    ARCHITECTURES[model_type] = architecture
    USER_REGISTERED.add(model_type)


# field -> (accepted types, what to write): the JSON form of each Architecture field
_FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "layers": ((str, list), "a dotted path or a list of them"),
    "mlp": ((str,), "a dotted path"),
    "up": ((str,), "an attribute name"),
    "down": ((str,), "an attribute name"),
    "gate": ((str, type(None)), "an attribute name or null"),
    "fused_gate_up": ((bool,), "true or false"),
    "conv1d": ((bool,), "true or false"),
    "width_config_key": ((str, type(None)), "a config field name or null"),
}


def architecture_from_dict(entry: Any, model_type: str = "") -> Architecture:
    """Build an ``Architecture`` from JSON-like data: one clear line for an entry that is not
    an object, unknown fields, fields of the wrong type, or missing ones. A string naming a known
    family (``{"my_llama": "llama"}``) reuses that family's entry."""
    label = f"architecture entry {model_type!r}" if model_type else "architecture entry"
    if isinstance(entry, str) and entry in ARCHITECTURES:
        return ARCHITECTURES[entry]
    if not isinstance(entry, dict):
        raise BabelmoeError(
            f"{label} is {json.dumps(entry)[:60]}, not an object of fields (or the name of a "
            f"known family: {', '.join(sorted(ARCHITECTURES))})",
            'write e.g. {"layers": "model.layers", "mlp": "mlp", "up": "up_proj", "down": '
            '"down_proj", "gate": "gate_proj"}',
        )
    known = {f.name for f in fields(Architecture)}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise BabelmoeError(
            f"unknown architecture field(s) in {label}: {', '.join(unknown)}",
            f"use only {', '.join(sorted(known))}",
        )
    for name, value in entry.items():
        types, what = _FIELD_TYPES[name]
        bad_list = isinstance(value, list) and not (
            value and all(isinstance(v, str) and v for v in value)
        )
        if not isinstance(value, types) or bad_list or value == "":
            raise BabelmoeError(
                f"{label}: field {name!r} is {json.dumps(value)[:60]}, not {what}",
                f"write {name} as {what}",
            )
    data = dict(entry)
    if isinstance(data.get("layers"), str):
        data["layers"] = (data["layers"],)
    data["layers"] = tuple(data.get("layers", ()))
    missing = [name for name in ("layers", "mlp", "up", "down") if not data.get(name)]
    if missing:
        raise BabelmoeError(
            f"incomplete {label}: missing {', '.join(missing)}", "give layers, mlp, up, down"
        )
    return Architecture(**data)


def register_from_file(path: str | Path) -> list[str]:
    """Register every entry of a JSON file ``{model_type: {field: value}}``; returns the types.

    An entry may redefine a built-in family: it is checked against the model it is applied to
    (``ffn.ffns``), refused when it does not fit and used with a warning when it does."""
    path = Path(path)
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BabelmoeError(
            f"no such architectures file: {path}", "pass an existing JSON file"
        ) from None
    except IsADirectoryError:
        raise BabelmoeError(f"architectures file {path} is a folder", "pass a JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        reason = exc.__class__.__name__ if isinstance(exc, RecursionError) else exc
        raise BabelmoeError(f"{path} is not valid JSON ({reason})", "fix the file") from None
    if not isinstance(table, dict):
        raise BabelmoeError(f"{path} must hold a JSON object", "map model_type to fields")
    entries = {t: architecture_from_dict(e, t) for t, e in table.items()}  # all checked first
    for model_type, architecture in entries.items():
        register_architecture(model_type, architecture)
    return list(table)


def redefined_builtin(model_type: str) -> Architecture | None:
    """The shipped entry of ``model_type`` when the user replaced it with another, else None."""
    builtin = BUILT_IN.get(model_type)
    current = ARCHITECTURES.get(model_type)
    return builtin if builtin is not None and current != builtin else None


_WARNED: set[str] = set()


def warn_if_redefined(model_type: str) -> None:
    """Log (once) that a user's entry replaces a built-in family's, naming both."""
    builtin = redefined_builtin(model_type)
    if builtin is not None and model_type not in _WARNED:
        _WARNED.add(model_type)
        logger.warning(
            "the built-in architecture %r is redefined by the user (was %s, now %s)",
            model_type,
            builtin,
            ARCHITECTURES[model_type],
        )


Shape = tuple[int, int]  # (out, in) of a projection, whatever its storage order


def check_ffn_shapes(
    arch: Architecture,
    model_type: str,
    layer: int,
    up: Shape | None,
    down: Shape | None,
    gate: Shape | None,
    others: dict[str, Shape],
) -> None:
    """Refuse a layer whose declared projections do not fit together: the down projection must
    map the FFN width back to the input size of ``up``, a declared gate must have ``up``'s shape,
    and a non-gated entry must not leave a projection of ``up``'s shape (``others``: the FFN's
    other projections) undeclared, i.e. a gated family declared without its gate, which pruning
    would leave wide beside the cut ``up``. ``None`` shapes (quantised weights) are skipped."""
    if up is None or down is None:
        return
    fix = f"fix the architecture entry for {model_type!r} (--architectures or Python)"
    width = up[0] // 2 if arch.fused_gate_up else up[0]
    where = f"layer {layer} of {model_type!r}"
    if down[1] != width or down[0] != up[1]:
        raise BabelmoeError(
            f"{where}: {arch.up} {list(up)} and {arch.down} {list(down)} are not the two sides "
            "of one FFN (the down projection must map the FFN width back to the hidden size)",
            fix,
        )
    if gate is not None and gate != up:
        raise BabelmoeError(
            f"{where}: gate {arch.gate} {list(gate)} differs from up {arch.up} {list(up)}", fix
        )
    if not arch.gated:
        for name, shape in sorted(others.items()):
            if shape == up:
                raise BabelmoeError(
                    f"{where}: its FFN has {name!r} of the same shape as {arch.up!r} {list(up)}, "
                    "but the architecture declares no gate (pruning would leave it wide)",
                    f'add "gate": "{name}" to the entry for {model_type!r}',
                )


def check_config_width(arch: Architecture, model_type: str, config: Any, widths: list[int]) -> None:
    """A user's entry must find the FFN the config describes: layers all of one width that
    differs from the config's FFN width mean other matrices (attention projections ...). Pruned
    models pass: a uniform one records its new width, a non-uniform one has several widths."""
    if model_type not in USER_REGISTERED or not arch.width_config_key:
        return
    expected = getattr(config, arch.width_config_key, None)
    if isinstance(expected, int) and len(set(widths)) == 1 and expected not in widths:
        raise BabelmoeError(
            f"the architecture entry for {model_type!r} finds projections of width "
            f"{widths[0]} ({arch.mlp}.{arch.up}), but the config's {arch.width_config_key} is "
            f"{expected}: it does not point at the FFN",
            f"fix the entry for {model_type!r} (--architectures or Python)",
        )


@contextlib.contextmanager
def user_entry_named(model_type: str) -> Iterator[None]:
    """Checks of ``model_type``'s entry against a model: a refusal says when the entry is the
    user's replacement of a built-in one; a pass logs (once) that a built-in is redefined."""
    try:
        yield
    except BabelmoeError as exc:
        if redefined_builtin(model_type) is None:
            raise
        raise BabelmoeError(
            f"{exc.problem}; the entry is the user's, replacing the built-in one", exc.fix
        ) from None
    warn_if_redefined(model_type)


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
            f"{hint}register it with babelmoe.models.register_architecture or --architectures FILE",
        )
    return ARCHITECTURES[model_type]
