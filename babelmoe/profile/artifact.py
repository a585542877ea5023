"""The profile artifact: per-language expert activation counts, and the view analyses read.

Tensors (``profile.safetensors``):
  counts       int64   [n_lang, L, E]     tokens of the language that selected (layer, expert)
  tokens       int64   [n_lang]           counted tokens per language (BOS and padding excluded)
  score_sums   float64 [n_lang, L, E]     sum over counted tokens of the raw expert score
  unit_counts  int64   [n_lang, U, L, E]  ``counts`` split into U bootstrap units (groups of whole
                                          documents: a language's j-th document goes to unit j % U)
  unit_tokens  int64   [n_lang, U]        ``tokens`` split the same way
JSON (``profile.json``): ``languages`` (one dict per language: code, bcp47, name, family, genus,
script, classification ...), ``n_layers``, ``n_experts``, ``selected_per_token``,
``partition_sha256``,
``model`` (identity), ``corpus`` (identity), ``config`` (the resolved profile config).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from babelmoe import artifacts
from babelmoe.errors import BabelmoeError

KIND = "profile"


@dataclass
class ProfileData:
    """Counts of one profiling run, with the metadata needed to interpret them."""

    counts: torch.Tensor  # [n_lang, L, E] int64
    tokens: torch.Tensor  # [n_lang] int64
    score_sums: torch.Tensor  # [n_lang, L, E] float64
    unit_counts: torch.Tensor  # [n_lang, U, L, E] int64
    unit_tokens: torch.Tensor  # [n_lang, U] int64
    languages: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        """Language codes in the order of the first tensor axis."""
        return [lang["code"] for lang in self.languages]

    @property
    def n_layers(self) -> int:
        return int(self.counts.shape[1])

    @property
    def n_experts(self) -> int:
        return int(self.counts.shape[2])

    @property
    def frequency(self) -> torch.Tensor:
        """[n_lang, L, E] float64: share of a language's tokens that selected each expert."""
        return self.counts.double() / self.tokens.clamp_min(1).double()[:, None, None]

    @property
    def mean_score(self) -> torch.Tensor:
        """[n_lang, L, E] float64: mean raw expert score per token."""
        return self.score_sums / self.tokens.clamp_min(1).double()[:, None, None]

    def index(self, code: str) -> int:
        """Position of a language code; a clear error if it was not profiled."""
        if code not in self.codes:
            raise BabelmoeError(
                f"language {code!r} was not profiled (profiled: {', '.join(self.codes)})",
                "pick one of those or re-run profile with it",
            )
        return self.codes.index(code)


def save_profile(folder: Path, data: ProfileData) -> Path:
    """Write the profile artifact atomically; returns the JSON path."""
    tensors = {
        "counts": data.counts.long(),
        "tokens": data.tokens.long(),
        "score_sums": data.score_sums.double(),
        "unit_counts": data.unit_counts.long(),
        "unit_tokens": data.unit_tokens.long(),
    }
    meta = {**data.meta, "languages": data.languages}
    return artifacts.save_artifact(folder, artifacts.PROFILE, tensors, meta, kind=KIND)


def load_profile(folder: Path) -> ProfileData:
    """Read and validate a profile artifact from a run folder."""
    tensors, meta = artifacts.load_artifact(Path(folder), artifacts.PROFILE, kind=KIND)
    languages = meta.pop("languages")
    return ProfileData(
        counts=tensors["counts"],
        tokens=tensors["tokens"],
        score_sums=tensors["score_sums"],
        unit_counts=tensors["unit_counts"],
        unit_tokens=tensors["unit_tokens"],
        languages=languages,
        meta=meta,
    )
