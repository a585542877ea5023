"""``SplitConfig``: how every FFN is split into experts (no torch at import, so ``--help`` stays
fast). The split itself is ``babelmoe.experts.partition``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from babelmoe.errors import BabelmoeError, check_seed, setting

Source = Literal["up", "gate", "both"]


@dataclass
class SplitConfig:
    """How to split every FFN into experts.

    Attributes:
        n_experts: experts per layer (E); the paper uses 256.
        source: rows clustered: ``up`` (the input projection, default), ``gate``, or ``both``
            (gate and up rows concatenated).
        seed: seed of the k-means initialisation; the same seed gives the same partition.
        max_iter: maximum k-means iterations per layer.
        device: where to cluster (``auto``: the model's device).
    """

    n_experts: int = 256
    source: Source = "up"
    seed: int = 0
    max_iter: int = 50
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.n_experts < 1:
            raise BabelmoeError(
                f"{setting('n_experts')} must be >= 1, got {self.n_experts}", "pass e.g. 256"
            )
        if self.source not in ("up", "gate", "both"):
            raise BabelmoeError(
                f"unknown {setting('source')} {self.source!r}", "use up, gate or both"
            )
        if self.max_iter < 1:
            raise BabelmoeError(
                f"{setting('max_iter')} must be >= 1, got {self.max_iter}", "pass e.g. 50"
            )
        check_seed(self.seed)
