"""Pure scoring and selection: from expert scores to the experts each token selects.

Shapes: T tokens, L layers, E experts per layer.
  scores [T, L, E]  raw expert scores (a norm of the expert's slice of the FFN activation)
  z      [T, L, E]  per token and layer, (score - mean_E) / std_E (population std over experts)
  chosen [T, k]     flat indices into L*E of the k selected (layer, expert) pairs per token
With ``selection="global"`` k = round(top_frac * L * E), chosen across layers (the paper's
definition); with ``"per_layer"`` each layer contributes round(top_frac * E).
"""

from __future__ import annotations

from typing import Literal

import torch

Selection = Literal["global", "per_layer"]

# Score sums are accumulated in fixed point (int64, 2**-16 resolution) so they are exact and
# independent of summation order: batch size, resumption and data-parallel ranks cannot change them.
FIXED_POINT_SCALE = 2.0**16


def selected_per_token(n_layers: int, n_experts: int, top_frac: float, selection: Selection) -> int:
    """How many (layer, expert) pairs each token selects."""
    if selection == "per_layer":
        return n_layers * max(1, round(top_frac * n_experts))
    return max(1, round(top_frac * n_layers * n_experts))


def zscore(scores: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """[..., E] -> [..., E]: standardise over the last axis (population std; constant rows -> 0)."""
    scores = scores.to(torch.promote_types(scores.dtype, torch.float32))
    mean = scores.mean(dim=-1, keepdim=True)
    std = scores.std(dim=-1, keepdim=True, correction=0)
    return (scores - mean) / std.clamp_min(eps)


def select(
    scores: torch.Tensor, top_frac: float, selection: Selection = "global", use_zscore: bool = True
) -> torch.Tensor:
    """[T, L, E] scores -> [T, k] flat indices (layer * E + expert) of the selected experts."""
    return select_standardised(
        zscore(scores) if use_zscore else scores.float(), top_frac, selection
    )


def select_standardised(
    values: torch.Tensor, top_frac: float, selection: Selection = "global"
) -> torch.Tensor:
    """Like ``select`` for values already z-scored (or raw, when the z-score is off)."""
    n_tokens, n_layers, n_experts = values.shape
    if selection == "per_layer":
        k = max(1, round(top_frac * n_experts))
        idx = values.topk(k, dim=-1, sorted=False).indices  # [T, L, k]
        layer_base = torch.arange(n_layers, device=values.device).view(1, n_layers, 1) * n_experts
        return (idx + layer_base).reshape(n_tokens, n_layers * k)
    k = selected_per_token(n_layers, n_experts, top_frac, "global")
    return values.reshape(n_tokens, n_layers * n_experts).topk(k, dim=-1, sorted=False).indices


def to_fixed_point(scores: torch.Tensor, dtype: torch.dtype = torch.int64) -> torch.Tensor:
    """Scores as multiples of 1/FIXED_POINT_SCALE (round to nearest), as int64 or as float64
    holding the same integers (exact below 2**53; sums of them in float64 are exact too)."""
    return torch.round(scores.double() * FIXED_POINT_SCALE).to(dtype)


def from_fixed_point(sums: torch.Tensor) -> torch.Tensor:
    """Inverse of ``to_fixed_point`` for accumulated sums (float64)."""
    return sums.double() / FIXED_POINT_SCALE
