"""Expert masks and gains on a dense model, through forward hooks: no weight copy, no reordering.

``scaled_experts(model, partition, scales)`` multiplies, in every layer, each expert's slice of
the FFN intermediate activation h (the input of the output projection: act(gate x) * (up x), or
act(W_in x)) by a factor while the context is open::

    scales [L, E]     one factor per (layer, expert), for every sequence of the batch
    scales [B, L, E]  one set per row of the batch (rows of a ``generate`` call keep their place)

0 switches an expert off (its neurons contribute nothing to the layer's output), 1 leaves it as
it is, > 1 amplifies it. A layer whose factors are all 1 gets no hook at all, so an all-ones
mask is the dense model bit for bit. This is the one mask-based path of the project: the
interventions (``babelmoe steer``) use it, and an evaluation of pruning by masks can wrap
``evaluate.perplexity`` in it instead of cutting weights (``keep_scales`` turns a set of experts
to drop into the [L, E] mask).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from babelmoe.errors import BabelmoeError
from babelmoe.experts.partition import Partition, check_partition_fits
from babelmoe.models.ffn import ffns


def selection_scales(selected: torch.Tensor, factor: float) -> torch.Tensor:
    """[L, E] float64 factors: ``factor`` on the selected experts (bool [L, E]), 1 elsewhere."""
    scales = torch.ones(selected.shape, dtype=torch.float64)
    scales[selected.bool()] = float(factor)
    return scales


def keep_scales(drop: torch.Tensor) -> torch.Tensor:
    """[L, E] mask that switches off the experts in ``drop`` (bool [L, E]) and keeps the rest."""
    return selection_scales(drop, 0.0)


def _check_scales(scales: torch.Tensor, partition: Partition) -> None:
    shape = (partition.n_layers, partition.n_experts)
    if scales.ndim not in (2, 3) or tuple(scales.shape[-2:]) != shape:
        raise BabelmoeError(
            f"expert scales of shape {tuple(scales.shape)} do not fit the partition {shape}",
            "pass [layers, experts] or [batch, layers, experts]",
        )
    if not bool(torch.isfinite(scales).all()) or bool((scales < 0).any()):
        raise BabelmoeError(
            "expert scales must be finite and non-negative", "use 0 to silence, > 1 to amplify"
        )


def _hook(neuron_scales: torch.Tensor):  # [width] or [B, width], on the layer's device
    cache: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def pre_hook(_module: nn.Module, args: tuple) -> tuple:
        h = args[0]  # [..., width] (batch first) or [B, T, width]
        s = neuron_scales
        if s.device != h.device or s.dtype != h.dtype:  # not where scaled_experts expected
            key = (h.device, h.dtype)
            if key not in cache:
                cache[key] = neuron_scales.to(h.device, h.dtype)
            s = cache[key]
        if s.ndim == 2:  # one row of factors per sequence
            if h.shape[0] != s.shape[0]:
                raise BabelmoeError(
                    f"per-row expert scales for {s.shape[0]} rows, batch of {h.shape[0]}",
                    "pass one [L, E] set per row of the batch",
                )
            s = s.view(s.shape[0], *([1] * (h.ndim - 2)), s.shape[1])
        return (h * s, *args[1:])

    return pre_hook


@contextlib.contextmanager
def scaled_experts(
    model: nn.Module, partition: Partition, scales: torch.Tensor | None
) -> Iterator[None]:
    """Multiply every expert's activation slice by ``scales`` while the context is open (module
    docstring); ``scales`` None: no change. Hooks are removed on exit, also on error."""
    if scales is None:
        yield
        return
    scales = torch.as_tensor(scales, dtype=torch.float64)
    _check_scales(scales, partition)
    check_partition_fits(partition, model)
    hooked = [bool((scales[..., layer, :] != 1).any()) for layer in range(partition.n_layers)]
    # Factors and labels go to each device once, and each layer's [B, width] factors are
    # gathered there: a generate batch of a 7B model would otherwise gather ~180 MB of float64
    # on the host and copy it over layer by layer, each copy waiting for the device.
    on_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = []
    try:
        for ffn in ffns(model):
            if not hooked[ffn.layer]:
                continue
            device, dtype = ffn.activation_placement()
            if device not in on_device:
                on_device[device] = (scales.to(device), partition.labels.to(device))
            factors, labels = on_device[device]
            neuron = factors[..., ffn.layer, :].index_select(-1, labels[ffn.layer])  # [(B,) width]
            handles.append(ffn.down.register_forward_pre_hook(_hook(neuron.to(dtype))))
        yield
    finally:
        for handle in handles:
            handle.remove()
