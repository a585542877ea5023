"""``ModelSpec``: what model to load and how (no torch at import, so ``--help`` stays fast).

Loading itself is ``babelmoe.models.loading.load_model``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from babelmoe.errors import BabelmoeError, setting

if TYPE_CHECKING:
    import torch

DEFAULT_MODEL = "default"
# --dtype names -> torch dtype attribute names
DTYPE_NAMES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "float64": "float64",
}


@dataclass
class ModelSpec:
    """What model to load and how.

    Attributes:
        source: ``"default"`` (the bundled Gemma 3 270M), a Hugging Face hub id, a local folder
            with a safetensors checkpoint, or a path to a ``.gguf`` file.
        dtype: ``auto`` (float32 on CPU, bfloat16 on GPU), float32, bfloat16, float16, float64.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:N``.
        device_map: passed to ``from_pretrained``; ``"auto"`` shards a model larger than one
            GPU across all visible GPUs (and CPU) with accelerate.
        trust_remote_code: allow custom modelling code from the hub (off by default).
    """

    source: str = DEFAULT_MODEL
    dtype: str = "auto"
    device: str = "auto"
    device_map: str | None = None
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if self.dtype != "auto" and self.dtype not in DTYPE_NAMES:
            raise BabelmoeError(
                f"unknown dtype {self.dtype!r}",
                f"use auto or one of {', '.join(sorted(DTYPE_NAMES))}",
            )

    def resolved_device(self) -> torch.device:
        """The device the model goes to (ignored when ``device_map`` is set)."""
        import torch

        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(self.device)
        except RuntimeError:
            raise BabelmoeError(
                f"unknown device {self.device!r}", "use auto, cpu, cuda or cuda:N"
            ) from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise BabelmoeError(
                "CUDA was asked for but no GPU is visible", f"use {setting('device')} cpu"
            )
        return device

    def resolved_dtype(self) -> torch.dtype:
        """The weights' dtype."""
        import torch

        if self.dtype == "auto":
            on_gpu = self.device_map is not None or self.resolved_device().type == "cuda"
            return torch.bfloat16 if on_gpu else torch.float32
        return getattr(torch, DTYPE_NAMES[self.dtype])
