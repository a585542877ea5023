"""Models: the architecture table, FFN access and surgery, and loading.

The names below load on first use (PEP 562), so that ``babelmoe.models.spec`` (the model options
of every command) imports without torch and ``--help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ARCHITECTURES": "architectures",
    "Architecture": "architectures",
    "register_architecture": "architectures",
    "resolve_architecture": "architectures",
    "FFN": "ffn",
    "decoder_layers": "ffn",
    "ffns": "ffn",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
