"""Forward throughput of a model with 25% of its FFN neurons physically removed, against the
same model unpruned (target, issue 6: >= 1.15x at the Llama-2-7B shape on an H200).

  python benchmarks/bench_pruned.py --device cpu --shape tiny-llama --batch 4 --seq 128
  python benchmarks/bench_pruned.py --device cuda --shape llama2-7b --batch 8 --seq 2048
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import describe_device, median, print_table, timed

from babelmoe.models.ffn import ffns
from babelmoe.models.shapes import SHAPES, shaped_model
from babelmoe.profile.core import compiled_layers, decoder_stack


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", default="tiny-llama", choices=sorted(SHAPES))
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--ratio", type=float, default=0.25, help="Share of FFN neurons removed.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--multiple", type=int, default=128, help="Round kept widths to this multiple."
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile every decoder layer (CUDA)."
    )
    args = parser.parse_args()

    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = shaped_model(args.shape, dtype=dtype, device=str(device), num_hidden_layers=args.layers)
    stack = decoder_stack(model)
    ids = torch.randint(3, model.config.vocab_size, (args.batch, args.seq), device=device)

    @torch.inference_mode()
    def forward() -> None:
        stack(input_ids=ids, use_cache=False)

    compiled = args.compile and device.type == "cuda"
    with compiled_layers(model, compiled):
        dense = median(timed(forward, device, args.repeats, warmup=2))
    width = ffns(model)[0].width
    keep = max(args.multiple, round(width * (1 - args.ratio) / args.multiple) * args.multiple)
    g = torch.Generator().manual_seed(0)
    for ffn in ffns(model):
        ffn.select_neurons(torch.sort(torch.randperm(width, generator=g)[:keep]).values)
    with compiled_layers(model, compiled):
        pruned = median(timed(forward, device, args.repeats, warmup=2))
    tokens = args.batch * args.seq
    print(
        f"# {args.shape}, FFN {width} -> {keep} ({1 - keep / width:.1%} removed), {dtype}, "
        f"batch {args.batch}x{args.seq}, {describe_device(device)}, compiled={args.compile}"
    )
    print_table(
        [
            ("dense forward", f"{tokens / dense:,.0f} tok/s", "reference", "1.000"),
            (
                "pruned forward",
                f"{tokens / pruned:,.0f} tok/s",
                "dense forward",
                f"{dense / pruned:.3f}",
            ),
        ],
        ("what", "figure", "measured against", "ratio"),
    )


if __name__ == "__main__":
    main()
