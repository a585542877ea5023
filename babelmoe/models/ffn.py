"""Uniform access to every decoder layer's FFN, whatever the family.

An ``FFN`` wraps one layer's projections as the architecture table describes them and exposes
them in one orientation: ``[width, hidden]`` rows for the input projections and the neuron
axis of the output projection. ``select_neurons`` keeps a subset (pruning) or reorders
(expert-contiguous layout) the FFN's neurons in place, for every family through one code path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from babelmoe.errors import BabelmoeError
from babelmoe.models.architectures import (
    Architecture,
    check_config_width,
    check_ffn_shapes,
    resolve_architecture,
    user_entry_named,
)


def _get(root: nn.Module, dotted: str) -> nn.Module:
    module = root
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def _has(root: nn.Module, dotted: str) -> bool:
    try:
        _get(root, dotted)
    except AttributeError:
        return False
    return True


@dataclass
class FFN:
    """One decoder layer's FFN: its modules and the architecture entry that located them."""

    layer: int
    module: nn.Module
    up: nn.Module
    down: nn.Module
    gate: nn.Module | None
    arch: Architecture

    # --- weights in one orientation -------------------------------------------------------
    def _in_rows(self, proj: nn.Module) -> torch.Tensor:
        """[out, in] view of an input projection's weight (transposing GPT-2's Conv1D)."""
        return proj.weight.t() if self.arch.conv1d else proj.weight

    @property
    def width(self) -> int:
        """Number of FFN neurons (the intermediate size)."""
        rows = self._in_rows(self.up).shape[0]
        return rows // 2 if self.arch.fused_gate_up else rows

    def up_rows(self) -> torch.Tensor:
        """[width, hidden] rows of the up (input) projection."""
        rows = self._in_rows(self.up)
        return rows[self.width :] if self.arch.fused_gate_up else rows

    def gate_rows(self) -> torch.Tensor | None:
        """[width, hidden] rows of the gate projection, or None for a non-gated FFN."""
        if self.arch.fused_gate_up:
            return self._in_rows(self.up)[: self.width]
        return None if self.gate is None else self._in_rows(self.gate)

    def activation_placement(self) -> tuple[torch.device, torch.dtype]:
        """Device and dtype of the FFN's intermediate activation (the output projection's
        input): those of that projection's weight (the CPU and the default dtype without one).
        What a mask or a factor on the activation is built in, once, before any forward."""
        weight = getattr(self.down, "weight", None)
        if weight is None:
            return torch.device("cpu"), torch.get_default_dtype()
        return weight.device, weight.dtype

    # --- surgery --------------------------------------------------------------------------
    @torch.no_grad()
    def select_neurons(self, keep: torch.Tensor) -> None:
        """Keep only neurons ``keep`` (int64 [n_keep], any order), in that order, in place.

        Input projections lose rows, the output projection loses input columns, biases of the
        input projections follow; the output bias is untouched. With ``keep`` a permutation the
        FFN computes the same function with its neurons reordered.
        """
        keep = keep.to(torch.long)
        if keep.ndim != 1 or keep.numel() == 0:
            raise BabelmoeError("a layer must keep at least one FFN neuron", "lower the ratio")
        width = self.width
        if self.arch.fused_gate_up:
            _select_out(self.up, torch.cat([keep, keep + width]), self.arch.conv1d)
        else:
            _select_out(self.up, keep, self.arch.conv1d)
            if self.gate is not None:
                _select_out(self.gate, keep, self.arch.conv1d)
        _select_in(self.down, keep, self.arch.conv1d)


def _select_out(proj: nn.Module, keep: torch.Tensor, conv1d: bool) -> None:
    """Keep output units ``keep`` of an input projection (Linear [out,in] or Conv1D [in,out])."""
    weight = proj.weight
    keep = keep.to(weight.device)
    new = weight[:, keep] if conv1d else weight[keep]
    proj.weight = nn.Parameter(new.contiguous(), requires_grad=weight.requires_grad)
    if getattr(proj, "bias", None) is not None:
        proj.bias = nn.Parameter(
            proj.bias[keep].contiguous(), requires_grad=proj.bias.requires_grad
        )
    if conv1d:
        proj.nf = int(keep.numel())
    elif hasattr(proj, "out_features"):
        proj.out_features = int(keep.numel())


def _select_in(proj: nn.Module, keep: torch.Tensor, conv1d: bool) -> None:
    """Keep input units ``keep`` of the output projection."""
    weight = proj.weight
    keep = keep.to(weight.device)
    new = weight[keep] if conv1d else weight[:, keep]
    proj.weight = nn.Parameter(new.contiguous(), requires_grad=weight.requires_grad)
    if hasattr(proj, "in_features") and not conv1d:
        proj.in_features = int(keep.numel())


def decoder_layers(model: nn.Module, arch: Architecture | None = None) -> nn.ModuleList:
    """The ``ModuleList`` of decoder layers of a causal LM."""
    arch = arch or resolve_architecture(model.config)
    for path in arch.layers:
        if _has(model, path):
            return _get(model, path)
    raise BabelmoeError(
        f"none of the layer paths {list(arch.layers)} exists in {type(model).__name__}",
        "fix the architecture entry for this model type (register_architecture)",
    )


def _out_in(proj: nn.Module, conv1d: bool) -> tuple[int, int] | None:
    """(out, in) of a projection's weight, or None when it has no plain 2-d weight."""
    weight = getattr(proj, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2 or not weight.is_floating_point():
        return None  # quantised or unusual: nothing to compare
    out, inp = weight.shape
    return (int(inp), int(out)) if conv1d else (int(out), int(inp))


def check_ffn(ffn: FFN, model_type: str) -> None:
    """``check_ffn_shapes`` on a loaded layer (its other projections found among the FFN's
    children)."""
    arch = ffn.arch
    declared = {id(ffn.up), id(ffn.down), id(ffn.gate)}
    others = {
        name: shape
        for name, child in ffn.module.named_children()
        if id(child) not in declared and (shape := _out_in(child, arch.conv1d)) is not None
    }
    check_ffn_shapes(
        arch,
        model_type,
        ffn.layer,
        _out_in(ffn.up, arch.conv1d),
        _out_in(ffn.down, arch.conv1d),
        None if ffn.gate is None else _out_in(ffn.gate, arch.conv1d),
        others,
    )


def ffns(model: nn.Module) -> list[FFN]:
    """Every decoder layer's FFN, in layer order (checked: ``check_ffn``)."""
    arch = resolve_architecture(model.config)
    found = []
    for index, layer in enumerate(decoder_layers(model, arch)):
        try:
            mlp = _get(layer, arch.mlp)
            found.append(
                FFN(
                    layer=index,
                    module=mlp,
                    up=_get(mlp, arch.up),
                    down=_get(mlp, arch.down),
                    gate=_get(mlp, arch.gate) if arch.gate else None,
                    arch=arch,
                )
            )
        except AttributeError as exc:
            raise BabelmoeError(
                f"layer {index} of {type(model).__name__} has no FFN where the table says ({exc})",
                "fix the architecture entry for this model type (register_architecture)",
            ) from None
    model_type = str(getattr(model.config, "model_type", ""))
    with user_entry_named(model_type):
        widths = [f.width for f in found if _out_in(f.up, arch.conv1d) is not None]
        check_config_width(arch, model_type, model.config, widths)
        for ffn in found:
            check_ffn(ffn, model_type)
    return found


def set_width_in_config(model: nn.Module, widths: list[int]) -> bool:
    """Record the FFN width in the config when it is uniform and the family stores it.

    Returns True when a stock ``from_pretrained`` can rebuild the model from its config.
    """
    arch = resolve_architecture(model.config)
    if len(set(widths)) != 1 or arch.width_config_key is None:
        return False
    setattr(model.config, arch.width_config_key, widths[0])
    text_config = getattr(model.config, "text_config", None)
    if text_config is not None and hasattr(text_config, arch.width_config_key):
        setattr(text_config, arch.width_config_key, widths[0])
    return True
