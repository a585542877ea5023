"""babelmoe: language-specific experts inside the feed-forward layers of decoder LLMs."""

from __future__ import annotations

__version__ = "0.1.0"

from babelmoe.errors import BabelmoeError

__all__ = ["BabelmoeError", "__version__"]
