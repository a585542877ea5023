"""Counts accumulated on the model's device; O(groups x L x E) memory, never O(tokens).

A group is one (language, bootstrap unit) pair; token g = -1 (BOS, padding) goes to a spare
row that is dropped at the end, so no boolean indexing (and no host sync) is needed per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from babelmoe.profile.scoring import Selection, select_standardised


@dataclass
class Totals:
    """Host copies of the accumulated statistics, shaped [n_lang, U, ...]."""

    unit_counts: torch.Tensor  # [n_lang, U, L, E] int64
    unit_tokens: torch.Tensor  # [n_lang, U] int64
    unit_score_sums: torch.Tensor  # [n_lang, U, L, E] int64 fixed point


class Accumulator:
    """Running counts of selected experts, tokens and score sums per group."""

    def __init__(
        self,
        n_lang: int,
        n_units: int,
        n_layers: int,
        n_experts: int,
        device: torch.device,
        top_frac: float,
        selection: Selection,
        use_zscore: bool,
    ) -> None:
        self.shape = (n_lang, n_units, n_layers, n_experts)
        self.n_groups = n_lang * n_units
        self.top_frac, self.selection, self.use_zscore = top_frac, selection, use_zscore
        rows = self.n_groups + 1  # + the spare row for ignored tokens
        self.counts = torch.zeros(rows, n_layers * n_experts, dtype=torch.int64, device=device)
        self.tokens = torch.zeros(rows, dtype=torch.int64, device=device)
        self.score_sums = torch.zeros(rows, n_layers, n_experts, dtype=torch.int64, device=device)
        self.timings: Any = None  # set by profile_batches (a babelmoe.profile.core.ProfileTimings)

    def rows(self, group: torch.Tensor) -> torch.Tensor:
        """[T] accumulator row of every token: its group, or the spare row for group -1."""
        group = group.to(self.counts.device, non_blocking=True)
        return torch.where(group < 0, self.n_groups, group)

    def add_batch(self, values: torch.Tensor, rows: torch.Tensor) -> None:
        """Select experts for every token of a batch and count them.

        values [T, L, E]: the scores, already z-scored per layer when the z-score is on;
        rows [T]: from ``rows(group)``.
        """
        chosen = select_standardised(values, self.top_frac, self.selection)  # [T, k]
        flat = (rows[:, None] * self.counts.shape[1] + chosen).reshape(-1)
        self.counts.view(-1).index_add_(0, flat, torch.ones_like(flat))
        self.tokens.index_add_(0, rows, torch.ones_like(rows))

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors to checkpoint (on the host)."""
        return {
            "counts": self.counts.cpu(),
            "tokens": self.tokens.cpu(),
            "score_sums": self.score_sums.cpu(),
        }

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore from ``state()``."""
        for name in ("counts", "tokens", "score_sums"):
            getattr(self, name).copy_(state[name])

    def all_reduce(self) -> None:
        """Sum the statistics over data-parallel ranks (integer sums: exact in any order)."""
        import torch.distributed as dist

        for tensor in (self.counts, self.tokens, self.score_sums):
            dist.all_reduce(tensor)

    def totals(self) -> Totals:
        """Host copies without the spare row, shaped per language and unit."""
        n_lang, n_units, n_layers, n_experts = self.shape
        g = self.n_groups
        return Totals(
            unit_counts=self.counts[:g].cpu().view(n_lang, n_units, n_layers, n_experts),
            unit_tokens=self.tokens[:g].cpu().view(n_lang, n_units),
            unit_score_sums=self.score_sums[:g].cpu().view(n_lang, n_units, n_layers, n_experts),
        )
