"""What the experts' scores cost on top of the FFN activation (a diagnostic, not a headline):
one layer's activation and its experts' scores, compiled as in the profiling graph, against the
activation alone. Variants, each ``torch.compile``d over the same gate and up projections
[T, width] (bfloat16 on CUDA):
  activation         h = silu(gate) * up     (what the plain forward computes)
  expert layout      h and split_scores(h)   (each expert's aligned head + its short tail)
  contiguous slices  h and the norms of contiguous slices (the layout before; 43-neuron slices
                     of a Llama-2-7B layer start at odd columns: inductor fuses the norm with h
                     into one kernel that cannot use vector loads)
The last column is the largest relative difference from the same code run eagerly, which norms
the activation rounded to bfloat16 (a compiled kernel that fuses silu(gate) x up into the norm
norms the unrounded float32 one).

  python benchmarks/bench_scores.py --device cuda --width 11008 --tokens 16384
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import describe_device, median, print_table, timed

from babelmoe.experts.moe_view import block_scores, expert_split, split_scores


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--width", type=int, default=11008, help="FFN width (Llama-2-7B).")
    parser.add_argument("--experts", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=16384)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()

    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    g = torch.Generator(device=device).manual_seed(0)
    gate, up = (
        torch.randn(args.tokens, args.width, generator=g, device=device, dtype=dtype)
        for _ in range(2)
    )
    e = args.experts
    sizes = torch.tensor([args.width // e + (i < args.width % e) for i in range(e)])
    split = expert_split(sizes)

    def activation(gate, up):
        return F.silu(gate) * up

    def layout_scores(gate, up):
        h = F.silu(gate) * up
        return h, split_scores(h, split, "l2")

    def contiguous_scores(gate, up):  # the layout before 2026-11-30: no aligned head
        h = F.silu(gate) * up
        n_big, big, small = split
        scores = block_scores(h[:, : n_big * big].unflatten(-1, (n_big, big)))
        if n_big < e:
            rest = block_scores(h[:, n_big * big :].unflatten(-1, (e - n_big, small)))
            scores = torch.cat([scores, rest], dim=-1)
        return h, scores

    variants = {
        "activation": activation,
        "expert layout": layout_scores,
        "contiguous slices": contiguous_scores,
    }
    rows, times, errors = [], {}, {}
    with torch.inference_mode():
        for name, fn in variants.items():
            compiled = torch.compile(fn, dynamic=False)
            result = compiled(gate, up)
            if isinstance(result, tuple):  # largest relative difference from eager
                reference = fn(gate, up)[1]
                errors[name] = float(((result[1] - reference).abs() / reference).max())
            times[name] = median(timed(lambda c=compiled: c(gate, up), device, args.repeats, 3))
    base = times["activation"]
    for name, seconds in times.items():
        error = f"{errors[name]:.1e}" if name in errors else "-"
        rows.append((name, f"{1e6 * seconds:,.0f}", f"{seconds / base:.2f}", error))
    print(f"{describe_device(device)}; [{args.tokens}, {args.width}] {dtype}, E = {e}")
    print_table(rows, ("variant", "us per call", "x activation", "max rel. diff"))


if __name__ == "__main__":
    main()
