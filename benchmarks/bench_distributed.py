"""Data-parallel and sharded profiling on several GPUs: exactness against one GPU, and scaling.

Mode ``single`` profiles the batches on one GPU and saves the counts; mode ``ddp`` (under torchrun)
profiles a round-robin shard per rank, all-reduces and saves; ``compare`` checks the two count
files are identical and prints the throughput ratio. Mode ``sharded`` builds one model, profiles it
on one GPU, then spreads its layers over every visible GPU with accelerate (``device_map``) and
profiles again: the counts must be identical.

  python benchmarks/bench_distributed.py single --out /tmp/single.pt
  torchrun --nproc_per_node 2 benchmarks/bench_distributed.py ddp --out /tmp/ddp.pt
  python benchmarks/bench_distributed.py compare /tmp/single.pt /tmp/ddp.pt
  python benchmarks/bench_distributed.py sharded --shape llama3-70b --layers 8
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_profile import balanced_labels
from common import print_table

from babelmoe.experts.partition import Partition
from babelmoe.models.ffn import decoder_layers, ffns
from babelmoe.models.shapes import SHAPES, shaped_model
from babelmoe.profile.batches import Batch
from babelmoe.profile.core import Scoring, profile_batches


def make_batches(vocab: int, n: int, batch: int, seq: int, n_lang: int = 9) -> list[Batch]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        ids = torch.randint(3, vocab, (batch, seq), generator=g)
        group = torch.randint(0, n_lang, (batch, 1), generator=g).expand(batch, seq).clone()
        group[:, 0] = -1
        out.append(Batch(ids, torch.ones_like(ids), group.reshape(-1)))
    return out


def build(args: argparse.Namespace, device: str):
    torch.manual_seed(0)
    model = shaped_model(args.shape, device=device, num_hidden_layers=args.layers)
    layers = ffns(model)
    partition = Partition(balanced_labels(len(layers), layers[0].width, 256), 256, meta={})
    return (
        model,
        partition,
        make_batches(model.config.vocab_size, args.batches, args.batch, args.seq),
    )


def run(
    model, partition, batches, rank: int = 0, world: int = 1, compile: bool = True
) -> tuple[dict, float]:
    scoring = Scoring(compile=compile, compile_layers=compile)
    profile_batches(
        model, partition, batches[: 2 * world], 9, 1, scoring, rank=rank, world_size=world
    )  # warm-up
    torch.cuda.synchronize()
    if world > 1:
        dist.barrier()
    start = time.perf_counter()
    acc = profile_batches(
        model, partition, batches, 9, 1, scoring, rank=rank, world_size=world, sync_every=10**9
    )
    if world > 1:
        acc.all_reduce()
    state = acc.state()  # syncs
    return state, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["single", "ddp", "compare", "sharded"])
    parser.add_argument("files", nargs="*")
    parser.add_argument("--out", default="/tmp/counts.pt")
    parser.add_argument("--shape", default="llama2-7b", choices=sorted(SHAPES))
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--batches", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    compile = not args.no_compile

    if args.mode == "compare":
        a, b = (torch.load(f) for f in args.files)
        same = all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])
        tokens = a["tokens"]
        print_table(
            [
                ("one GPU", f"{tokens / a['seconds']:,.0f} tok/s", "reference", "1.000", "-"),
                (
                    f"{b['world']} GPUs (torchrun, all-reduce)",
                    f"{tokens / b['seconds']:,.0f} tok/s",
                    "one GPU",
                    f"{a['seconds'] / b['seconds']:.3f}",
                    "identical" if same else "DIFFERENT",
                ),
            ],
            ("run", "throughput", "measured against", "speed-up", "counts vs one GPU"),
        )
        sys.exit(0 if same else 1)

    if args.mode == "ddp":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        dist.init_process_group("nccl")
        rank, world = dist.get_rank(), dist.get_world_size()
        model, partition, batches = build(args, "cuda")
        state, seconds = run(model, partition, batches, rank, world, compile)
        if rank == 0:
            torch.save(
                {
                    "state": state,
                    "seconds": seconds,
                    "world": world,
                    "tokens": args.batches * args.batch * args.seq,
                },
                args.out,
            )
        dist.destroy_process_group()
        return

    if args.mode == "single":
        model, partition, batches = build(args, "cuda:0")
        state, seconds = run(model, partition, batches, compile=compile)
        torch.save(
            {
                "state": state,
                "seconds": seconds,
                "world": 1,
                "tokens": args.batches * args.batch * args.seq,
            },
            args.out,
        )
        return

    # sharded: the same weights on one GPU, then spread over every GPU with accelerate
    from accelerate import dispatch_model

    model, partition, batches = build(args, "cuda:0")
    one, _ = run(model, partition, batches, compile=False)
    n_gpus = torch.cuda.device_count()
    layers = decoder_layers(model)
    prefix = next(n for n, m in model.named_modules() if m is layers)
    device_map = {
        "model.embed_tokens": 0,
        "model.norm": n_gpus - 1,
        "model.rotary_emb": 0,
        "lm_head": n_gpus - 1,
    }
    for i in range(len(layers)):
        device_map[f"{prefix}.{i}"] = i * n_gpus // len(layers)
    model = dispatch_model(model, device_map=device_map)
    placed = sorted({str(p.device) for p in model.parameters()})
    sharded, _ = run(model, partition, batches, compile=False)
    same = all(torch.equal(one[k].cpu(), sharded[k].cpu()) for k in one)
    print(
        f"# {args.shape} with {len(layers)} layers on {placed}: counts "
        f"{'identical to' if same else 'DIFFERENT from'} the one-GPU run "
        f"({int(one['tokens'].sum())} tokens)"
    )
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
