"""Models: the architecture table, FFN access and surgery, and loading."""

from babelmoe.models.architectures import (
    ARCHITECTURES,
    Architecture,
    register_architecture,
    resolve_architecture,
)
from babelmoe.models.ffn import FFN, decoder_layers, ffns

__all__ = [
    "ARCHITECTURES",
    "FFN",
    "Architecture",
    "decoder_layers",
    "ffns",
    "register_architecture",
    "resolve_architecture",
]
