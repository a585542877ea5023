"""What the experts' scores cost on top of the FFN activation (a diagnostic, not a headline):
one layer's activation and its experts' scores, compiled as in the profiling graph, against the
activation alone. Variants, each ``torch.compile``d over the same gate and up projections
[T, width] (bfloat16 on CUDA):
  activation     h = silu(gate) * up       (what the plain forward computes)
  torch scores   h and split_scores(h)     (inductor fuses the norm with h, recomputing it)

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

from babelmoe.profile.fused import expert_split, split_scores


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

    def torch_scores(gate, up):
        h = F.silu(gate) * up
        return h, split_scores(h, split, "l2")

    variants = {"activation": activation, "torch scores": torch_scores}
    rows, times = [], {}
    with torch.inference_mode():
        for name, fn in variants.items():
            compiled = torch.compile(fn, dynamic=False)
            times[name] = median(timed(lambda c=compiled: c(gate, up), device, args.repeats, 3))
    base = times["activation"]
    for name, seconds in times.items():
        rows.append((name, f"{1e6 * seconds:,.0f}", f"{seconds / base:.2f}"))
    print(f"{describe_device(device)}; [{args.tokens}, {args.width}] {dtype}, E = {e}")
    print_table(rows, ("variant", "us per call", "x activation"))


if __name__ == "__main__":
    main()
