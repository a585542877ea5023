"""Read every decoder layer's FFN input weights from a safetensors checkpoint, one layer at a time.

``split`` clusters only the rows of each layer's input projection (``up``, and ``gate`` for
``--source gate`` or ``both``). For a model larger than one GPU (Llama-3-70B: 141 GB in bf16)
loading the whole model just to read them wastes minutes and memory; this module opens the
safetensors shards lazily (``safe_open``) and reads those tensors by name, one layer at a time,
so that memory holds one layer's rows and nothing else.

Tensor names come from the architecture table (:mod:`babelmoe.models.architectures`): the
module paths there are relative to the ``*ForCausalLM`` root, as are the names that
``save_pretrained`` writes (``model.layers.{i}.mlp.up_proj.weight``). A checkpoint saved from
the bare base model (no ``model.`` / ``transformer.`` prefix, as the original GPT-2 files) is
recognised too. The rows come out in the orientation of :class:`babelmoe.models.ffn.FFN`
(``[width, hidden]``, GPT-2's Conv1D transposed, Phi-3's fused gate+up cut in two) and, given a
``dtype``, cast as ``from_pretrained(dtype=...)`` would: the same bytes as the loaded model's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from babelmoe.errors import BabelmoeError, setting
from babelmoe.models.architectures import (
    Architecture,
    check_config_width,
    check_ffn_shapes,
    resolve_architecture,
    user_entry_named,
)

__all__ = [
    "StreamedCheckpoint",
    "StreamedFFN",
    "checkpoint_files",
    "ffn_tensor_names",
    "is_streamable",
    "stream_ffns",
]

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


@dataclass
class StreamedFFN:
    """One layer's FFN input weights as read from the checkpoint (no modules).

    Offers the part of :class:`babelmoe.models.ffn.FFN` that clustering needs: ``layer``,
    ``width``, ``up_rows()`` and ``gate_rows()``. A part that was not asked for is None:
    ``up_rows()`` then raises, ``gate_rows()`` returns None.
    """

    layer: int
    width: int
    up: torch.Tensor | None  # [width, hidden]
    gate: torch.Tensor | None  # [width, hidden], None also when the FFN has no gate
    gated: bool

    def up_rows(self) -> torch.Tensor:
        """[width, hidden] rows of the up (input) projection."""
        if self.up is None:
            raise RuntimeError("the up projection was not read (stream_ffns parts)")
        return self.up

    def gate_rows(self) -> torch.Tensor | None:
        """[width, hidden] rows of the gate projection, or None for a non-gated FFN or when
        the gate was not read (``gated`` tells which)."""
        return self.gate


def checkpoint_files(folder: str | Path) -> dict[str, Path] | None:
    """Tensor name -> safetensors file of the checkpoint in ``folder``, or None if it has none.

    Reads ``model.safetensors.index.json`` (sharded checkpoints) or the header of a single
    ``model.safetensors``; no tensor data is read.
    """
    folder = Path(folder).expanduser()
    index = folder / INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise BabelmoeError(
                f"{index} is not a valid safetensors index ({exc.__class__.__name__})",
                "re-download or re-save the checkpoint",
            ) from None
        return {name: folder / file for name, file in weight_map.items()}
    single = folder / SINGLE_FILE
    if single.is_file():
        with _opened(single, folder) as f:
            return dict.fromkeys(f.keys(), single)
    return None


@contextmanager
def _opened(path: Path, folder: Path) -> Iterator[Any]:
    """``safe_open(path)``; a damaged file raises the loader's error (``cannot load model``)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            yield _Checked(f, folder)
    except (OSError, SafetensorError) as exc:
        raise _damaged(folder, exc) from None


@dataclass
class _Checked:
    """A safetensors handle whose reads raise the loader's error for a damaged file."""

    handle: Any
    folder: Path

    def keys(self) -> list[str]:
        return list(self.handle.keys())

    def shape(self, name: str) -> list[int]:
        return list(self.handle.get_slice(name).get_shape())

    def get_tensor(self, name: str) -> torch.Tensor:
        from safetensors import SafetensorError

        try:
            return self.handle.get_tensor(name)
        except (OSError, SafetensorError) as exc:
            raise _damaged(self.folder, exc) from None


def _damaged(folder: Path, exc: BaseException) -> BabelmoeError:
    return BabelmoeError(
        f"cannot load model {str(folder)!r}: {(str(exc).splitlines() or [''])[0][:200]}",
        "check the folder holds config.json, weights and a tokenizer",
    )


def _read_config(folder: Path, trust_remote_code: bool = False) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise BabelmoeError(
            f"cannot read the config of {folder}: {str(exc).splitlines()[0][:200]}",
            "pass a folder with config.json",
        ) from None


def is_streamable(source: str | Path) -> bool:
    """Whether ``source`` is a local folder whose FFN weights :func:`stream_ffns` can read.

    True for a folder with ``config.json`` and safetensors weights (sharded with an index, or
    one file) of an unquantised model; False for anything else (a hub id, a GGUF file, a folder
    of ``.bin`` weights or of a quantised model), which must be loaded as a whole.
    """
    folder = Path(source).expanduser()
    if not folder.is_dir() or not (folder / "config.json").is_file():
        return False
    if not ((folder / INDEX_FILE).is_file() or (folder / SINGLE_FILE).is_file()):
        return False
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(config, dict) and "quantization_config" not in config


def _layer_prefix(arch: Architecture, names: set[str] | dict[str, Path]) -> str:
    """The stored name prefix of the decoder layers (``model.layers``), first match wins."""
    probe = f"{arch.mlp}.{arch.up}.weight"
    tried = []
    for path in arch.layers:
        parts = path.split(".")
        for prefix in (path, ".".join(parts[1:])) if len(parts) > 1 else (path,):
            tried.append(prefix)
            if f"{prefix}.0.{probe}" in names:
                return prefix
    raise BabelmoeError(
        f"the checkpoint holds none of {[f'{p}.0.{probe}' for p in tried]}",
        "check that the folder holds this model's unquantised weights, or fix the architecture "
        "entry (register_architecture); `babelmoe split` without streaming loads the model",
    )


def ffn_tensor_names(arch: Architecture, names: set[str] | dict[str, Path]) -> list[dict[str, str]]:
    """Per layer, the stored names of the FFN's input projections: ``{"up": ..., "gate": ...}``.

    ``gate`` is missing for a non-gated FFN and for a fused gate+up (``up`` holds both).
    Raises :class:`BabelmoeError` when layers are missing or not numbered ``0..L-1``.
    """
    prefix = _layer_prefix(arch, names)
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.")
    found = {int(m.group(1)) for name in names if (m := pattern.match(name))}
    n_layers = max(found) + 1
    out = []
    for i in range(n_layers):
        entry = {"up": f"{prefix}.{i}.{arch.mlp}.{arch.up}.weight"}
        if arch.gate is not None:
            entry["gate"] = f"{prefix}.{i}.{arch.mlp}.{arch.gate}.weight"
        missing = [name for name in entry.values() if name not in names]
        if missing:
            raise BabelmoeError(
                f"the checkpoint has layers up to {n_layers - 1} but not {missing[0]}",
                "check that the checkpoint is complete (all shards downloaded)",
            )
        out.append(entry)
    return out


@dataclass
class StreamedCheckpoint:
    """A safetensors checkpoint opened for streaming: its config, family and FFN tensor names.

    Build it with :meth:`open`; reading the names and shapes touches no tensor data.
    """

    folder: Path
    config: Any
    arch: Architecture
    files: dict[str, Path]  # tensor name -> shard
    names: list[dict[str, str]]  # per layer {"up": name, "gate": name}

    @classmethod
    def open(
        cls, folder: str | Path, config: Any = None, trust_remote_code: bool = False
    ) -> StreamedCheckpoint:
        """Read the index (or the single file's header) and the config of ``folder``.

        Raises:
            BabelmoeError: no safetensors weights, an unknown family or a native MoE model,
                or FFN tensors missing.
        """
        folder = Path(folder).expanduser()
        files = checkpoint_files(folder)
        if files is None:
            raise BabelmoeError(
                f"{folder} holds no safetensors weights ({SINGLE_FILE} or {INDEX_FILE})",
                "pass a folder saved with save_pretrained (safetensors), or load the model whole",
            )
        if config is None:
            config = _read_config(folder, trust_remote_code)
        arch = resolve_architecture(config)
        checkpoint = cls(folder, config, arch, files, ffn_tensor_names(arch, files))
        checkpoint.check_shapes()
        return checkpoint

    def check_shapes(self) -> None:
        """The architecture entry checked against the stored shapes (tensor headers only), as
        ``ffns`` checks a loaded model: ``check_ffn_shapes`` per layer, ``check_config_width``."""
        arch = self.arch
        model_type = str(getattr(self.config, "model_type", ""))

        def oriented(shape: list[int]) -> tuple[int, int] | None:
            if len(shape) != 2:
                return None
            return (shape[1], shape[0]) if arch.conv1d else (shape[0], shape[1])

        widths = []
        with ExitStack() as stack, user_entry_named(model_type):
            handles: dict[Path, Any] = {}

            def shape(name: str) -> tuple[int, int] | None:
                path = self._shard(name)
                if path not in handles:
                    handles[path] = stack.enter_context(_opened(path, self.folder))
                return oriented(list(handles[path].shape(name)))

            for layer, names in enumerate(self.names):
                mlp = names["up"][: -len(f"{arch.up}.weight")]  # "model.layers.3.mlp."
                declared = {f"{mlp}{p}.weight" for p in (arch.up, arch.down, arch.gate) if p}
                others = {
                    name[len(mlp) : -len(".weight")]: found
                    for name in self.files
                    if name.startswith(mlp)
                    and name.endswith(".weight")
                    and name not in declared
                    and "." not in name[len(mlp) : -len(".weight")]
                    and (found := shape(name)) is not None
                }
                down = f"{mlp}{arch.down}.weight"
                up = shape(names["up"])
                if up is not None:
                    widths.append(up[0] // 2 if arch.fused_gate_up else up[0])
                check_ffn_shapes(
                    arch,
                    model_type,
                    layer,
                    up,
                    shape(down) if down in self.files else None,
                    shape(names["gate"]) if "gate" in names else None,
                    others,
                )
            check_config_width(arch, model_type, self.config, widths)

    @property
    def n_layers(self) -> int:
        return len(self.names)

    def _shard(self, name: str) -> Path:
        path = self.files[name]
        if not path.is_file():
            raise BabelmoeError(
                f"shard {path.name} of {self.folder} is missing", "download the whole checkpoint"
            )
        return path

    def identity(self, name: str) -> dict[str, Any]:
        """The model identity of :func:`babelmoe.models.loading.model_identity`, from the
        tensor headers (no weights read): name, model_type, n_layers, ffn_widths, hidden_size."""
        widths, hidden = set(), 0
        for names in self.names:
            with _opened(self._shard(names["up"]), self.folder) as f:
                shape = f.shape(names["up"])
            rows, hidden = (shape[1], shape[0]) if self.arch.conv1d else (shape[0], shape[1])
            widths.add(rows // 2 if self.arch.fused_gate_up else rows)
        return {
            "name": name,
            "model_type": self.config.model_type,
            "n_layers": self.n_layers,
            "ffn_widths": sorted(widths),
            "hidden_size": int(hidden),
        }

    def ffns(
        self,
        parts: tuple[str, ...] = ("up",),
        *,
        dtype: torch.dtype | None = None,
        device: str | torch.device = "cpu",
        start: int = 0,
    ) -> Iterator[StreamedFFN]:
        """Yield the FFN input rows of layers ``start..L-1``; see :func:`stream_ffns`."""
        unknown = sorted(set(parts) - {"up", "gate"})
        if unknown or not parts:
            raise BabelmoeError(f"unknown FFN part(s) {unknown or parts}", "ask for up and/or gate")
        arch = self.arch
        if "gate" in parts and not arch.gated:
            raise BabelmoeError(
                "the gate rows were asked for, but this model's FFN has no gate",
                f"use {setting('source')} up",
            )
        with ExitStack() as stack:
            handles: dict[Path, Any] = {}

            def read(name: str) -> torch.Tensor:
                path = self._shard(name)
                if path not in handles:
                    handles[path] = stack.enter_context(_opened(path, self.folder))
                return handles[path].get_tensor(name)

            for index in range(start, self.n_layers):
                names = self.names[index]
                fused = read(names["up"])
                if arch.conv1d:
                    fused = fused.t()
                rows = fused.shape[0]
                width = rows // 2 if arch.fused_gate_up else rows
                up = gate = None
                if arch.fused_gate_up:
                    up = fused[width:] if "up" in parts else None
                    gate = fused[:width] if "gate" in parts else None
                else:
                    up = fused if "up" in parts else None
                    if "gate" in parts:
                        gate = read(names["gate"])
                        gate = gate.t() if arch.conv1d else gate
                yield StreamedFFN(
                    layer=index,
                    width=width,
                    up=None if up is None else _finish(up, dtype, device),
                    gate=None if gate is None else _finish(gate, dtype, device),
                    gated=arch.gated,
                )
                del fused, up, gate


def stream_ffns(
    folder: str | Path,
    parts: tuple[str, ...] = ("up",),
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
    start: int = 0,
    config: Any = None,
    trust_remote_code: bool = False,
) -> Iterator[StreamedFFN]:
    """Yield every layer's FFN input rows from the safetensors checkpoint in ``folder``.

    Only the tensors named in ``parts`` (``"up"``, ``"gate"``) are read, one layer at a time
    (a fused gate+up is read whole and cut); each shard is opened once (memory-mapped) and
    closed when the iteration ends.

    Args:
        folder: local folder with ``config.json`` and ``model.safetensors`` or
            ``model.safetensors.index.json`` plus its shards.
        parts: which input projections to read.
        dtype: cast the rows to this dtype (as the loaded model would hold them); None keeps
            the stored dtype.
        device: where the rows go (read on CPU, then moved).
        start: first layer to read (a resumed split skips the layers it has).
        config: the model's transformers config, if already loaded (else read from the folder).
        trust_remote_code: passed to ``AutoConfig`` when the config is read here.

    Raises:
        BabelmoeError: no safetensors weights, an unknown family or a native MoE model,
            tensors or shards missing, or a gate asked for a model without one.
    """
    checkpoint = StreamedCheckpoint.open(folder, config, trust_remote_code)
    yield from checkpoint.ffns(parts, dtype=dtype, device=device, start=start)


def _finish(
    rows: torch.Tensor, dtype: torch.dtype | None, device: str | torch.device
) -> torch.Tensor:
    """Contiguous rows in ``dtype`` on ``device`` (casts round to nearest even on any device)."""
    if dtype is not None:
        rows = rows.to(dtype)
    return rows.contiguous().to(device)
