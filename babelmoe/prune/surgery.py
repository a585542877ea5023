"""Model surgery: removed experts -> removed neurons -> physically smaller FFNs; save and load.

An expert is a set of FFN neurons (the partition's labels). Removing experts keeps, in every
layer, the neurons whose expert survives, in their original order, through
``FFN.select_neurons``: rows of the up (and gate) projection and their biases, columns of the
down projection. The result computes exactly what the dense model computes with those neurons'
activations zeroed (the down projection's bias is untouched).

Saved layout (a folder, written to a temporary name and renamed into place):

* every layer keeps the same width and the family stores the width in its config (Llama,
  Gemma, Qwen, Mistral, GPT-2 ...): a standard checkpoint; stock
  ``AutoModelForCausalLM.from_pretrained(folder)`` loads it, and so does lm-evaluation-harness
  (``lm_eval --model hf --model_args pretrained=FOLDER``);
* widths differ between layers, or the family derives the width (BLOOM): the same files, but
  ``config.json`` keeps the dense width, so a stock ``from_pretrained`` stops with a size-mismatch
  error instead of loading wrong weights. Load it with :func:`load_pruned`, which builds the model
  from its config without allocating weights, narrows each layer's FFN to its saved width and
  loads the state dict. lm-evaluation-harness takes the loaded model::

      from lm_eval.models.huggingface import HFLM
      from transformers import AutoTokenizer
      from babelmoe.prune import load_pruned
      lm = HFLM(pretrained=load_pruned(folder), tokenizer=AutoTokenizer.from_pretrained(folder))

In both cases ``babelmoe_pruning.json`` (``PRUNING_FILE``) records the per-layer widths, the
removed experts and why they were removed (method, languages, ratio or tau, seed, partition
sha256, model identity).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from babelmoe import artifacts
from babelmoe.errors import BabelmoeError, OutputError, first_sentence, setting
from babelmoe.experts.partition import Partition
from babelmoe.models.ffn import ffns, set_width_in_config

logger = logging.getLogger(__name__)

PRUNING_FILE = artifacts.PRUNING_FILE
KIND = "pruned_model"
LOADER_TRANSFORMERS = "transformers"
LOADER_BABELMOE = "babelmoe"


def kept_neurons(partition: Partition, drop: torch.Tensor) -> list[torch.Tensor]:
    """Per layer, the sorted int64 indices of the neurons whose expert is not in ``drop`` [L, E]."""
    if tuple(drop.shape) != (partition.n_layers, partition.n_experts):
        raise BabelmoeError(
            f"the selection has shape {tuple(drop.shape)}, the partition "
            f"{partition.n_layers} layers x {partition.n_experts} experts",
            "select experts with a profile made with this partition",
        )
    labels = partition.labels.long()  # [L, width]
    keep = ~drop.bool().gather(1, labels)  # [L, width]: the neuron's expert survives
    return [row.nonzero().flatten() for row in keep]


def prune_model(model: nn.Module, partition: Partition, drop: torch.Tensor) -> list[int]:
    """Cut the neurons of the experts in ``drop`` [L, E] from every FFN, in place; the widths."""
    layers = ffns(model)
    if len(layers) != partition.n_layers or any(f.width != partition.width for f in layers):
        raise BabelmoeError(
            f"the partition is for {partition.n_layers} layers x {partition.width} neurons, the "
            f"model has {len(layers)} x {sorted({f.width for f in layers})}",
            "prune the dense model the partition was made for",
        )
    for ffn, keep in zip(layers, kept_neurons(partition, drop), strict=True):
        ffn.select_neurons(keep)
    return [f.width for f in layers]


_SHAPE_ATTRS = ("in_features", "out_features", "nf")


@contextlib.contextmanager
def temporarily_pruned(
    model: nn.Module, partition: Partition, drop: torch.Tensor
) -> Iterator[list[int]]:
    """Prune in place for the block and restore the dense FFNs afterwards, even on error.

    ``select_neurons`` swaps in new, smaller parameters and leaves the originals untouched, so
    restoring puts the original parameter objects back: no copy of the weights is made.
    """
    saved = []
    for ffn in ffns(model):
        for module in (ffn.up, ffn.gate, ffn.down):
            if module is not None:
                attrs = {a: module.__dict__[a] for a in _SHAPE_ATTRS if a in module.__dict__}
                saved.append((module, dict(module._parameters), attrs))
    try:
        yield prune_model(model, partition, drop)
    finally:
        for module, params, attrs in saved:
            for name, param in params.items():
                setattr(module, name, param)
            for name, value in attrs.items():
                setattr(module, name, value)


def read_pruning_record(folder: Path) -> dict[str, Any]:
    """The ``babelmoe_pruning.json`` of a pruned-model folder, validated."""
    path = Path(folder) / PRUNING_FILE
    if not path.is_file():
        raise BabelmoeError(
            f"{folder} is not a babelmoe-pruned model (no {PRUNING_FILE})",
            "pass a folder written by babelmoe prune",
        )
    record = artifacts.read_json(path, KIND, "re-run babelmoe prune with this version")
    if not isinstance(record.get("widths"), list):
        raise BabelmoeError(f"{path} is not a pruning record", "re-run babelmoe prune")
    return record


def is_pruned_folder(path: Path) -> bool:
    """Whether ``path`` is a folder holding a pruning record."""
    return (Path(path) / PRUNING_FILE).is_file()


def check_can_write_pruned(out: Path, identity: Mapping[str, Any], force: bool) -> bool:
    """True: write ``out``; False: it already holds this pruned model (same ``identity`` keys).

    Raises for a folder holding another pruned model unless ``force``, and for anything else
    (a file, a folder of other files) even with ``force``: that is never replaced.
    """
    out = Path(out)
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return True
    if not is_pruned_folder(out):
        raise OutputError(
            f"{out} exists and is not a pruned model (it is never replaced)",
            f"choose another {setting('out')}",
        )
    if force:
        return True
    record = read_pruning_record(out)
    differing = sorted(k for k, v in identity.items() if record.get(k) != artifacts.jsonable(v))
    if differing:
        raise BabelmoeError(
            f"{out} already holds a different pruned model (differs in: {', '.join(differing)})",
            f"choose another {setting('out')} or pass {setting('force')} to replace it",
        )
    return False


def save_pruned(model: nn.Module, tokenizer: Any, out: Path, record: Mapping[str, Any]) -> Path:
    """Write the pruned ``model`` (and ``tokenizer`` when given) with its record into ``out``.

    Writes into a temporary folder beside ``out`` and renames it into place (an existing ``out``
    is replaced: check with :func:`check_can_write_pruned` first). Returns the record's path.
    """
    out = Path(out)
    widths = [f.width for f in ffns(model)]
    standard = set_width_in_config(model, widths)
    full = {
        "schema_version": artifacts.SCHEMA_VERSION,
        "kind": KIND,
        **record,
        "widths": widths,
        "uniform": len(set(widths)) == 1,
        "loader": LOADER_TRANSFORMERS if standard else LOADER_BABELMOE,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        with _as_plain_float(model):
            model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        artifacts.atomic_write_json(tmp / PRUNING_FILE, full)
        _swap_into_place(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        named = artifacts.named_os_error(exc, out)
        if named is not exc:
            raise named from None
        raise
    logger.info(
        "saved pruned model (widths %d..%d, loader %s) to %s",
        min(widths),
        max(widths),
        full["loader"],
        out,
    )
    return out / PRUNING_FILE


def _quant_method(config: Any) -> str | None:
    qconfig = getattr(config, "quantization_config", None)
    if qconfig is None:
        return None
    method = qconfig.get("quant_method") if isinstance(qconfig, dict) else qconfig.quant_method
    return str(getattr(method, "value", method))


@contextlib.contextmanager
def _as_plain_float(model: nn.Module) -> Iterator[None]:
    """Save a GGUF-loaded model as the plain float model it is (transformers de-quantises GGUF on
    load but keeps a quantizer that makes ``save_pretrained`` refuse); refuse real quantization."""
    method = _quant_method(model.config)
    quantizer = getattr(model, "hf_quantizer", None)
    if method is None and quantizer is None:
        yield
        return
    if method != "gguf":
        raise BabelmoeError(
            f"the model is quantized ({method}); its pruned weights cannot be saved as they are",
            f"load the model in float (e.g. {setting('dtype')} float32 or bfloat16) to prune it",
        )
    qconfig = model.config.quantization_config
    del model.config.quantization_config
    model.hf_quantizer = None
    try:
        yield
    finally:
        model.config.quantization_config = qconfig
        model.hf_quantizer = quantizer


def _swap_into_place(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.replace(out, old / "replaced")
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _read_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    state: dict[str, torch.Tensor] = {}
    for name in files:
        if not (folder / name).is_file():
            raise BabelmoeError(f"{folder / name} is missing", "re-run babelmoe prune")
        state.update(load_file(str(folder / name)))
    return state


def load_pruned(
    folder: Path | str, dtype: torch.dtype | None = None, device: str | torch.device = "cpu"
) -> nn.Module:
    """Rebuild a pruned model from ``folder`` (any widths), in eval mode.

    The model is built from ``config.json`` with empty weights, each layer's FFN is narrowed to
    the width in ``babelmoe_pruning.json``, then the saved tensors are assigned (tied weights
    re-tied). ``dtype`` None keeps the saved dtype.
    """
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = Path(folder)
    record = read_pruning_record(folder)
    config = AutoConfig.from_pretrained(folder)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    layers = ffns(model)
    if len(layers) != len(record["widths"]):
        raise BabelmoeError(
            f"{folder}: {len(record['widths'])} widths for {len(layers)} layers",
            "re-run babelmoe prune",
        )
    for ffn, width in zip(layers, record["widths"], strict=True):
        if ffn.width != width:
            ffn.select_neurons(torch.arange(int(width)))
    try:
        result = model.load_state_dict(_read_state_dict(folder), strict=False, assign=True)
    except RuntimeError as exc:  # a saved tensor of another shape (a gate left wide ...)
        detail = next((ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln), "")
        raise BabelmoeError(
            f"{folder}: its weights do not fit the model its config describes "
            f"({detail.rstrip('.') or first_sentence(exc)})",
            "re-run babelmoe prune on the original model (with this version of babelmoe)",
        ) from None
    model.tie_weights()
    empty = [name for name, p in model.named_parameters() if p.is_meta]
    if result.unexpected_keys or empty:
        raise BabelmoeError(
            f"{folder}: weights do not match the model (missing {empty[:3]}, unexpected "
            f"{result.unexpected_keys[:3]})",
            "re-run babelmoe prune",
        )
    if dtype is not None:
        model.to(dtype)
    return model.to(device).eval()
