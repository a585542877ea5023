"""Profiling throughput and memory against the plain forward pass of the same model.

Both passes run the decoder without the LM head on the same full (unpadded) batches, same dtype
and attention kernel; they alternate so drift hits both. Targets (issue 6, on an H200 at the
Llama-2-7B shape): profile/plain >= 0.97, profile >= 45k tokens/s, peak memory within 10%.

  python benchmarks/bench_profile.py --device cpu --shape tiny-llama --batch 4 --seq 128
  python benchmarks/bench_profile.py --device cuda --shape llama2-7b --batch 8 --seq 2048
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import describe_device, median, peak_memory, print_table, sync

from babelmoe.experts.partition import Partition
from babelmoe.models.ffn import ffns
from babelmoe.models.shapes import SHAPES, shaped_model
from babelmoe.profile.batches import Batch
from babelmoe.profile.core import Scoring, compiled_layers, decoder_stack, profile_batches


def balanced_labels(n_layers: int, width: int, n_experts: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.arange(width) % n_experts
    return torch.stack([base[torch.randperm(width, generator=g)] for _ in range(n_layers)])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", default="tiny-llama", choices=sorted(SHAPES))
    parser.add_argument("--layers", type=int, default=None, help="Override the number of layers.")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--dtype", default=None, help="bfloat16 (GPU default) or float32 (CPU default)."
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=4, help="Batches per timed pass.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--experts", type=int, default=256)
    parser.add_argument("--attn", default="sdpa")
    parser.add_argument(
        "--trace", action="store_true", help="Print the kernel table of one profiled step."
    )
    parser.add_argument(
        "--variants",
        default="eager,fused statistics",
        help="Comma-separated: eager, fused statistics, compiled layers.",
    )
    args = parser.parse_args()

    device = torch.device(args.device)
    dtype = (
        getattr(torch, args.dtype)
        if args.dtype
        else (torch.bfloat16 if device.type == "cuda" else torch.float32)
    )
    model = shaped_model(
        args.shape,
        dtype=dtype,
        device=str(device),
        num_hidden_layers=args.layers,
        attn_implementation=args.attn,
    )
    layers = ffns(model)
    partition = Partition(
        balanced_labels(len(layers), layers[0].width, args.experts), args.experts, meta={}
    )
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(args.steps):
        ids = torch.randint(3, vocab, (args.batch, args.seq), generator=g)
        group = torch.randint(0, 9, (args.batch, args.seq), generator=g)
        group[:, 0] = -1
        batches.append(Batch(ids, torch.ones_like(ids), group.reshape(-1)))
    stack = decoder_stack(model)
    device_batches = [b.input_ids.to(device) for b in batches]
    tokens = args.steps * args.batch * args.seq
    params = sum(
        p.numel() for n, p in model.named_parameters() if "embed" not in n and "lm_head" not in n
    )
    print(
        f"# {args.shape} ({len(layers)} layers, FFN {layers[0].width}, E={args.experts}), {dtype}, "
        f"batch {args.batch}x{args.seq}, {args.steps} batches, {describe_device(device)}, "
        f"attn={args.attn}"
    )
    variants = {
        "eager": (False, Scoring(compile=False)),
        "fused statistics": (False, Scoring(compile=True)),
        "compiled layers": (True, Scoring(compile=True, compile_layers=True)),
    }
    rows = []
    for name in args.variants.split(","):
        compile_plain, scoring = variants[name]

        @torch.inference_mode()
        def plain(compile_plain: bool = compile_plain) -> float:
            """Seconds of one pass over the batches, after a warm-up pass in the same compiled
            block (compilation is not timed; each block compiles afresh)."""
            with compiled_layers(model, compile_plain and device.type == "cuda"):
                times = []
                for _ in range(2):
                    sync(device)
                    start = time.perf_counter()
                    for ids in device_batches:
                        stack(input_ids=ids, use_cache=False)
                    sync(device)
                    times.append(time.perf_counter() - start)
            return times[-1]

        def profiled(scoring: Scoring = scoring) -> float:
            """Seconds of one pass, from the steady state of a call over the batches twice
            (everything after its first batch, which compiles)."""
            acc = profile_batches(model, partition, batches * 2, 9, 1, scoring, sync_every=10**9)
            return acc.timings.steady_s * len(batches) / (2 * len(batches) - 1)

        plain_t, prof_t = [], []
        for _ in range(args.repeats):  # alternate so machine drift affects both
            plain_t.append(plain())
            prof_t.append(profiled())
        plain_mem, prof_mem = peak_memory(device, plain), peak_memory(device, profiled)
        plain_tps, prof_tps = tokens / median(plain_t), tokens / median(prof_t)
        mem = (
            f"{prof_mem / 2**30:.2f} / {plain_mem / 2**30:.2f} GiB = {prof_mem / plain_mem:.3f}"
            if plain_mem
            else "-"
        )
        rows.append(
            (
                name,
                f"{plain_tps:,.0f}",
                f"{prof_tps:,.0f}",
                f"{prof_tps / plain_tps:.3f}",
                f"{2 * params * prof_tps / 1e12:,.0f}",
                mem,
            )
        )
    print_table(
        rows,
        (
            "variant",
            "plain tok/s (reference)",
            "profile tok/s",
            "ratio",
            "profile TFLOP/s (2 x params)",
            "peak memory profile / plain",
        ),
    )
    if args.trace:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + (
            [ProfilerActivity.CUDA] if device.type == "cuda" else []
        )
        with profile(activities=activities) as prof:
            profile_batches(
                model,
                partition,
                batches[:1] * 3,  # the first compiles; the kernel table is mostly steady state
                9,
                1,
                variants[args.variants.split(",")[-1]][1],
                sync_every=10**9,
            )
        key = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
        print(prof.key_averages().table(sort_by=key, row_limit=40))


if __name__ == "__main__":
    main()
