"""Where the steering phase of ``babelmoe steer`` spends its time beyond the plain model (a
diagnostic; ``bench_steer.py`` gives the headline ratio).

On a run folder that ``bench_steer.py`` left (``--workdir``), it rebuilds the command's generate
batches (the steer rows of ``interventions/rows.jsonl``, sorted by prompt length, 64 a batch)
and times, batch by batch and synchronised: the plain ``generate`` (no hook), the same with one
set of expert factors per row (as the command runs: random k experts per layer at the row's
factor), entering and leaving the masks alone, the fluency forwards and language
identification. ``--profile`` adds a torch profiler table of one plain and one hooked batch;
``--in-process`` then runs the stage itself (``run_steer``, steering only, ``force``) in this
process, once timed and once under cProfile (the functions that took the most time).

  python benchmarks/diag_steer.py --run /tmp/bs/run --model /tmp/bs/model --device cuda --profile
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import sync  # noqa: E402

from babelmoe.evaluate.encoding import encode, pad_token_id  # noqa: E402
from babelmoe.evaluate.scoring import score_tails  # noqa: E402
from babelmoe.experts.masks import scaled_experts, selection_scales  # noqa: E402
from babelmoe.interventions.langid import identify  # noqa: E402
from babelmoe.interventions.selection import random_like  # noqa: E402
from babelmoe.interventions.steering import GenerationConfig, generate  # noqa: E402
from babelmoe.models.loading import ModelSpec, load_model  # noqa: E402
from babelmoe.stages.prune import load_run  # noqa: E402


def row_scales(rows: list[dict], n_layers: int, n_experts: int, k: int) -> list:
    """One [L, E] factor set per row: None for the unmodified model, else k random experts per
    layer at the row's factor (the command's sizes; which experts does not change the cost)."""
    k_per_layer = torch.zeros(n_layers, n_experts, dtype=torch.bool)
    k_per_layer[:, :k] = True
    return [
        None
        if r["condition"] == "dense"
        else selection_scales(random_like(k_per_layer, seed=i), r["factor"])
        for i, r in enumerate(rows)
    ]


def in_process(run: Path, loaded) -> dict[str, float]:
    """``run_steer`` (steering only) in this process: its own timing, then a cProfile table."""
    import cProfile
    import gc
    import pstats

    from babelmoe.stages.steer import SteerConfig, run_steer

    config = SteerConfig(silencing=False)
    out = {}
    for name in ("run_steer_s", "run_steer_again_s", "run_steer_gc_frozen_s"):
        if name == "run_steer_gc_frozen_s":  # is the collector walking the process's objects?
            gc.collect()
            gc.freeze()
        start = time.perf_counter()
        run_steer(config, run, model=loaded, force=True)
        out[name] = time.perf_counter() - start
        print(f"{name}: {out[name]:.3f} s", flush=True)
    profiler = cProfile.Profile()
    profiler.runcall(run_steer, config, run, model=loaded, force=True)
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(20)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--k", type=int, default=16, help="experts per layer per row")
    parser.add_argument("--profile", action="store_true", help="torch profiler tables")
    parser.add_argument("--in-process", action="store_true", help="run_steer here, profiled")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    partition, _ = load_run(args.run)
    loaded = load_model(ModelSpec(source=str(args.model), device=args.device))
    model, tok, dev = loaded.model, loaded.tokenizer, loaded.device
    rows = [json.loads(line) for line in (args.run / "interventions/rows.jsonl").open()][1:]
    steer = [r for r in rows if r.get("kind") == "steer"]
    config = GenerationConfig()
    prompts = [encode(tok, r["prompt"])[: config.max_prompt_tokens] for r in steer]
    scales = row_scales(steer, partition.n_layers, partition.n_experts, args.k)
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
    batches = [order[b : b + config.batch_size] for b in range(0, len(order), config.batch_size)]
    pad = pad_token_id(tok)

    def clock(fn) -> tuple[float, object]:
        sync(dev)
        start = time.perf_counter()
        out = fn()
        sync(dev)
        return time.perf_counter() - start, out

    generate(model, tok, partition, [prompts[i] for i in batches[0]], [None], config)  # warm-up
    totals: dict[str, float] = {}
    for batch in batches:
        p = [prompts[i] for i in batch]
        s = [scales[i] for i in batch]
        t_plain, new = clock(
            lambda p=p: generate(model, tok, partition, p, [None] * len(p), config)
        )
        t_hooked, _ = clock(lambda p=p, s=s: generate(model, tok, partition, p, s, config))
        stacked = torch.stack(
            [torch.ones(partition.n_layers, partition.n_experts) if x is None else x for x in s]
        )

        def enter(stacked=stacked) -> None:
            with scaled_experts(model, partition, stacked):
                pass

        t_enter, _ = clock(enter)
        requests = [(q + n, len(n)) for q, n in zip(p, new, strict=True) if n]
        t_score, _ = clock(lambda r=requests: score_tails(model, r, batch_size=16, pad_id=pad))
        texts = [tok.decode(t, skip_special_tokens=True) for t in new]
        t_lid, _ = clock(lambda t=texts: identify(t))
        for name, value in [
            ("generate_plain_s", t_plain),
            ("generate_hooked_s", t_hooked),
            ("masks_enter_exit_s", t_enter),
            ("fluency_s", t_score),
            ("langid_s", t_lid),
        ]:
            totals[name] = totals.get(name, 0.0) + value
        print(
            f"batch of {len(p)} (prompt <= {max(map(len, p))} tokens): plain {t_plain:.3f} s, "
            f"hooked {t_hooked:.3f} s, masks {t_enter:.4f} s, fluency {t_score:.3f} s, "
            f"langid {t_lid:.4f} s",
            flush=True,
        )
    totals["hooked_over_plain"] = totals["generate_hooked_s"] / totals["generate_plain_s"]
    print(json.dumps(totals, indent=2))
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU]
        if dev.type == "cuda":
            activities.append(ProfilerActivity.CUDA)
        p = [prompts[i] for i in batches[-1]]
        s = [scales[i] for i in batches[-1]]
        for name, factors in (("plain", [None] * len(p)), ("hooked", s)):
            with profile(activities=activities) as prof:
                generate(model, tok, partition, p, factors, config)
                sync(dev)
            key = "self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
            print(f"--- {name}: by {key}")
            print(prof.key_averages().table(sort_by=key, row_limit=18))
            if dev.type == "cuda":
                print(f"--- {name}: by self_cpu_time_total")
                print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    if args.in_process:
        totals.update(in_process(args.run, loaded))
    if args.out:
        args.out.write_text(json.dumps(totals, indent=2))


if __name__ == "__main__":
    main()
