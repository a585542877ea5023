"""Builders shared by the tests (no downloads)."""

from __future__ import annotations

import torch

from babelmoe.experts.partition import Partition


def balanced_partition(n_layers: int, width: int, n_experts: int, seed: int = 0) -> Partition:
    """Random exactly balanced labels with the canonical order (larger experts first)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.arange(width) % n_experts  # experts 0..(width % E - 1) get one more neuron
    labels = torch.stack([base[torch.randperm(width, generator=g)] for _ in range(n_layers)])
    return Partition(labels=labels, n_experts=n_experts, meta={})
