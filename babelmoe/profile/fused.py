"""One layer's statistics from its FFN activation, fused into few kernels on CUDA.

``layer_statistics(h, sizes, norm, use_zscore)`` returns, for h [T, width] in the
expert-contiguous layout: ``fixed`` [T, E] int64 (the raw scores in fixed point, for the score
sums) and ``values`` [T, E] float32 (the z-scores, or the raw scores without the z-score). On CUDA
it is compiled with ``torch.compile`` (one Triton reduction instead of a slow inner-dimension
reduce plus several elementwise passes); elsewhere it runs eagerly. Both paths compute the same
definitions (``babelmoe.experts.moe_view.expert_scores``, ``babelmoe.profile.scoring.zscore``).
"""

from __future__ import annotations

import functools
import logging

import torch

from babelmoe.experts.moe_view import block_scores, expert_scores
from babelmoe.profile.scoring import to_fixed_point, zscore

logger = logging.getLogger(__name__)


def layer_statistics(
    h: torch.Tensor, sizes: torch.Tensor, norm: str, use_zscore: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(fixed-point raw scores [T, E] int64, selection values [T, E] float32) of one layer."""
    scores = expert_scores(h, sizes, norm)
    values = zscore(scores) if use_zscore else scores
    return to_fixed_point(scores), values.float()


def _equal_sizes_statistics(
    h: torch.Tensor, n_experts: int, norm: str, use_zscore: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``layer_statistics`` for experts of one size, written for the compiler (no data-dependent
    shapes: the expert size is width // n_experts)."""
    scores = block_scores(h.unflatten(-1, (n_experts, h.shape[-1] // n_experts)), norm)
    values = zscore(scores) if use_zscore else scores
    return to_fixed_point(scores), values.float()


@functools.cache
def _compiled():
    return torch.compile(_equal_sizes_statistics, dynamic=True, fullgraph=True)


def statistics_function(device: torch.device, sizes: torch.Tensor, compile: bool):
    """The function the hooks call for a layer with expert ``sizes`` on ``device``."""
    equal = bool((sizes == sizes[0]).all())
    if compile and equal and device.type == "cuda":
        n_experts = int(sizes.numel())
        fn = _compiled()
        return lambda h, _sizes, norm, use_z: fn(h, n_experts, norm, use_z)
    return layer_statistics
