"""The command users run, timed: ``babelmoe split`` then ``babelmoe profile`` with default options,
against the plain compiled forward over the same batches, in the same run.

It writes a checkpoint of a named shape (random weights, the byte tokenizer from
``babelmoe.models.shapes``: one token per UTF-8 byte) and a folder corpus of nine languages with
a realistic length mix (many short documents, a few long ones; Latin, CJK, Arabic, Devanagari
and Bengali script), runs both commands as subprocesses (``python -m babelmoe.cli``) with only
``--model``, ``--device``, ``--corpus``, ``--budget`` (``--tokens`` / 9) and the run folder given,
and reads the profile's ``profile_timings.json``. The reference is the same model loaded the same
way, each decoder layer compiled, over the same batches without hooks (and, as a second
reference, over the same tokens in full dense rows). ``--torchrun N`` also profiles with N
data-parallel processes and compares the counts with the one-process run.

Printed: whole-command tokens/s (model load reported separately), steady-state tokens/s,
warm-up (first batch, compilation included), compiled graphs and recompile-limit hits, padding
share, peak memory, and the ratios to the reference. Issue 12's targets (H200, llama2-7b, ~2M
tokens): steady >= 0.95 x reference and >= 42k tok/s, whole command minus load >= 0.85 x,
no recompile-limit hit, warm-up <= 30 s, peak memory within 10%.

  python benchmarks/bench_cli.py --device cpu --shape tiny-llama --tokens 20000
  python benchmarks/bench_cli.py --device cuda --shape llama2-7b --tokens 2000000 --out r.json
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import cli_env  # noqa: E402

from babelmoe import artifacts  # noqa: E402
from babelmoe.models.shapes import SHAPES, byte_tokenizer, make_config, random_model  # noqa: E402

LANGUAGES = ["en", "fr", "es", "pt", "zh", "ar", "hi", "bn", "ur"]
# Letters per language (the byte tokenizer makes a CJK or Indic letter 3 tokens, Arabic 2).
_LATIN = "abcdefghijklmnopqrstuvwxyz"
ALPHABETS = {
    "en": _LATIN,
    "fr": _LATIN + "éèàçêô",
    "es": _LATIN + "ñáéíóú",
    "pt": _LATIN + "ãõçáéê",
    "zh": "".join(chr(c) for c in range(0x4E00, 0x4E00 + 400)),
    "ar": "".join(chr(c) for c in range(0x0627, 0x064B)),
    "hi": "".join(chr(c) for c in range(0x0905, 0x093A)),
    "bn": "".join(chr(c) for c in range(0x0985, 0x09BA)),
    "ur": "".join(chr(c) for c in range(0x0627, 0x064B)) + "ٹڈڑںہے",
}


def document_lengths(rng: random.Random, total: int) -> list[int]:
    """Token lengths summing to about ``total``: 97% short (log-normal, median 250, 16-2000),
    3% long (4,000-30,000): about half the tokens come from the few long documents."""
    lengths, sum_ = [], 0
    while sum_ < total or len(lengths) < 12:  # enough documents for the held-out split
        if rng.random() < 0.03:
            n = rng.randint(4_000, 30_000)
        else:
            n = int(min(2_000, max(16, rng.lognormvariate(math.log(250), 0.8))))
        lengths.append(n)
        sum_ += n
    return lengths


def document(rng: random.Random, alphabet: str, n_bytes: int) -> str:
    """Pseudo-text of about ``n_bytes`` UTF-8 bytes: words of 2-9 letters, sentences, lines."""
    parts, size, words = [], 0, 0
    cjk = alphabet[0] >= "\u4e00"
    while size < n_bytes:
        word = "".join(
            rng.choice(alphabet) for _ in range(rng.randint(1, 4) if cjk else rng.randint(2, 9))
        )
        words += 1
        sep = "。" if cjk and words % 12 == 0 else "" if cjk else ". " if words % 12 == 0 else " "
        if words % 60 == 0:
            sep = "\n"
        parts.append(word + sep)
        size += len((word + sep).encode())
    return "".join(parts).strip()


def write_corpus(folder: Path, tokens_per_language: int, seed: int = 0) -> dict[str, int]:
    """``<lang>.txt`` files (documents separated by blank lines); returns bytes per language."""
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for i, lang in enumerate(LANGUAGES):
        rng = random.Random(seed * 1000 + i)
        # 20% of the documents are held out for evaluation: write enough for the budget to bind
        docs = [
            document(rng, ALPHABETS[lang], n)
            for n in document_lengths(rng, 2 * tokens_per_language + 64)
        ]
        text = "\n\n".join(docs) + "\n"
        (folder / f"{lang}.txt").write_text(text, encoding="utf-8")
        sizes[lang] = len(text.encode())
    return sizes


def write_checkpoint(folder: Path, shape: str, device: str):
    """A random model of ``shape`` with the byte tokenizer, saved with ``save_pretrained``;
    returns the model (still on ``device``: the reference reuses it instead of loading it)."""
    model_type, values = SHAPES[shape]
    tokenizer = byte_tokenizer()
    values = {
        **values,
        "max_position_embeddings": 4096,
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config = make_config(model_type, **values)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = random_model(config, dtype=dtype, device=device)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model.eval()


def run_command(argv: list[str], log: Path, env: dict | None = None) -> float:
    """Run ``argv``; its output goes to ``log``; returns wall seconds (raises on failure)."""
    started = time.perf_counter()
    with open(log, "w") as out:
        result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}):\n{tail}")
    return seconds


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def plain_forward(model, batches, device: torch.device, compiled: bool) -> dict:
    """Time the decoder stack (no LM head, no hooks) over ``batches``: the first batch
    (compilation included) apart from the rest. Compiled with inductor's own defaults (no
    deterministic mode: what a user's plain ``torch.compile`` gets)."""
    from babelmoe.profile.core import compiled_layers, decoder_stack

    stack = decoder_stack(model)
    counted = [b.n_counted for b in batches]
    positions = [b.n_positions for b in batches]
    with compiled_layers(model, compiled, deterministic=False) as report:
        started = time.perf_counter()
        for step, batch in enumerate(batches):
            inputs = {"input_ids": batch.input_ids.to(device, non_blocking=True)}
            if batch.position_ids is not None:
                inputs["position_ids"] = batch.position_ids.to(device, non_blocking=True)
            stack(**inputs, use_cache=False)
            if step == 0:
                _sync(device)
                first = time.perf_counter() - started
        _sync(device)
        total = time.perf_counter() - started
    steady = total - first if len(batches) > 1 else 0.0
    return {
        "first_batch_s": first,
        "total_s": total,
        "steady_s": steady,
        "steady_tokens_per_s": sum(counted[1:]) / steady if steady > 0 else float("nan"),
        "steady_positions_per_s": sum(positions[1:]) / steady if steady > 0 else float("nan"),
        "graphs": report.graphs,
        "limit_hits": report.limit_hits,
    }


def dense_batches(batches, max_length: int, batch_tokens: int):
    """The same tokens (BOS and padding dropped) as full rows of ``max_length``, no padding."""
    from babelmoe.profile.batches import Batch

    stream = torch.cat([b.input_ids.reshape(-1)[b.group >= 0] for b in batches])
    rows_per_batch = max(1, batch_tokens // max_length)
    n_rows = stream.numel() // max_length
    rows = stream[: n_rows * max_length].view(n_rows, max_length)
    out = []
    for start in range(0, n_rows - rows_per_batch + 1, rows_per_batch):
        ids = rows[start : start + rows_per_batch]
        out.append(Batch(ids, torch.ones_like(ids), torch.zeros(ids.numel(), dtype=torch.int64)))
    return out


def reference(
    checkpoint: Path,
    corpus: Path,
    budget: int,
    device: str,
    dense: bool,
    model=None,
    sample: int | None = None,
) -> dict:
    """Time the plain forward over the command's batches: the model loaded as the command does
    (or ``model``, the same weights still in memory), the batches built by the same code.
    ``sample``: only that many of them, evenly spaced over all lengths (for long runs; the
    steady tokens/s is a rate, so a sample estimates it)."""
    from transformers import AutoTokenizer

    from babelmoe.models.loading import ModelSpec, load_model
    from babelmoe.stages.profile import ProfileConfig, config_batches, tokenized_corpus

    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    started = time.perf_counter()
    if model is None:
        loaded = load_model(ModelSpec(source=str(checkpoint), device=device))
        model, tokenizer = loaded.model, loaded.tokenizer
    else:
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    load_s = time.perf_counter() - started
    config = ProfileConfig(corpus=str(corpus), token_budget=budget)
    _, documents, _ = tokenized_corpus(config, tokenizer)
    batches = config_batches(config, documents, tokenizer)
    n_batches = len(batches)
    if sample and n_batches > sample:
        batches = [batches[i * n_batches // sample] for i in range(sample)]
    compiled = dev.type == "cuda" and config.compile
    result = {"load_s": load_s, "batches": n_batches, "timed": len(batches), "compiled": compiled}
    result["same_batches"] = plain_forward(model, batches, dev, compiled)
    if dev.type == "cuda":
        result["peak_memory"] = torch.cuda.max_memory_allocated(dev)
    if dense:
        rows = dense_batches(batches, config.max_length, config.batch_tokens)
        result["dense_rows"] = plain_forward(model, rows, dev, compiled)
    return result


def compare_profiles(a: Path, b: Path) -> dict:
    from babelmoe.profile.artifact import load_profile

    one, other = load_profile(a), load_profile(b)
    return {
        "counts_identical": bool(torch.equal(one.counts, other.counts)),
        "tokens_identical": bool(torch.equal(one.tokens, other.tokens)),
        "score_sums_identical": bool(torch.equal(one.score_sums, other.score_sums)),
        "counts_moved": int((one.counts - other.counts).abs().sum()) // 2,
        "selections": int(one.counts.sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", default="tiny-llama", choices=sorted(SHAPES))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tokens", type=int, default=20_000, help="Counted tokens, all languages.")
    parser.add_argument("--work", type=Path, default=None, help="Folder to keep (else a temp dir).")
    parser.add_argument("--out", type=Path, default=None, help="Write the results as JSON here.")
    parser.add_argument("--no-reference", action="store_true", help="Skip the plain forward.")
    parser.add_argument(
        "--reference-batches",
        type=int,
        default=None,
        help="Time the plain forward over this many of the batches, evenly spaced (long runs).",
    )
    parser.add_argument("--dense", action="store_true", help="Also time dense full rows.")
    parser.add_argument("--torchrun", type=int, default=0, help="Also profile with N processes.")
    parser.add_argument(
        "--split-args", default="", help="Extra options for split (e.g. '--max-iter 1')."
    )
    parser.add_argument("--logs", type=Path, default=None, help="Command logs here (else --work).")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_cli_"))
    work.mkdir(parents=True, exist_ok=True)
    logs = args.logs or work
    logs.mkdir(parents=True, exist_ok=True)
    checkpoint, run = work / "model", work / "run"
    budget = max(1, args.tokens // len(LANGUAGES))
    corpus = work / f"corpus-{budget}"  # one per budget: runs of other sizes share the model
    env = cli_env(ROOT)
    if args.torchrun:  # the one-process run on the first GPU only, as a user would
        env1 = {**env, "CUDA_VISIBLE_DEVICES": env.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]}
    else:
        env1 = env
    cli = [sys.executable, "-m", "babelmoe.cli"]
    model_args = ["--model", str(checkpoint), "--device", args.device]
    results: dict = {
        "shape": args.shape,
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "tokens_asked": args.tokens,
        "budget_per_language": budget,
    }
    import transformers

    results["transformers"] = transformers.__version__

    def save() -> None:  # after every phase: a run cut short still leaves what it measured
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")

    def note(what: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f} s] {what}", flush=True)

    began = started = time.perf_counter()
    model = None
    if not (checkpoint / "config.json").exists():
        model = write_checkpoint(checkpoint, args.shape, args.device)
        results["parameters"] = sum(p.numel() for p in model.parameters())
    results["checkpoint_s"] = time.perf_counter() - started
    if not corpus.exists():
        write_corpus(corpus, budget)
    note("checkpoint and corpus written")
    profile_args = ["--corpus", str(corpus), "--budget", str(budget)]

    if not (run / f"{artifacts.PARTITION}.json").exists():
        results["split_s"] = run_command(
            [*cli, "split", *model_args, "--out", str(run), *shlex.split(args.split_args)],
            logs / "split.log",
            env1,
        )
        note(f"split: {results['split_s']:.1f} s")
    for path in [*run.glob(f"{artifacts.PROFILE}.*"), run / artifacts.PROFILE_TIMINGS_FILE]:
        path.unlink(missing_ok=True)  # profile afresh (a kept work folder holds the last one)
    wall = run_command(
        [*cli, "profile", str(run), *model_args, *profile_args], logs / "profile.log", env1
    )
    timings = json.loads((run / artifacts.PROFILE_TIMINGS_FILE).read_text())
    log = (logs / "profile.log").read_text(errors="replace")
    tokens = timings["counted_tokens"]
    results["profile"] = {
        **timings,
        "wall_s": wall,
        "limit_warnings_in_log": log.count("hit config."),
        "tokens_per_s_whole": tokens / wall,
        "tokens_per_s_whole_minus_load": tokens / (wall - timings["load_s"]),
    }
    save()
    note(f"profile: {wall:.1f} s")

    if args.torchrun:
        run_n = work / f"run_x{args.torchrun}"
        shutil.rmtree(run_n, ignore_errors=True)
        run_n.mkdir()
        for path in run.glob(f"{artifacts.PARTITION}.*"):
            shutil.copy(path, run_n / path.name)
        wall_n = run_command(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                f"--nproc_per_node={args.torchrun}",
                "-m",
                "babelmoe.cli",
                "profile",
                str(run_n),
                *model_args,
                *profile_args,
            ],
            logs / "profile_torchrun.log",
            env,
        )
        timings_n = json.loads((run_n / artifacts.PROFILE_TIMINGS_FILE).read_text())
        one = results["profile"]
        results["torchrun"] = {
            "processes": args.torchrun,
            "wall_s": wall_n,
            **{f"rank0_{k}": v for k, v in timings_n.items()},
            "speedup_whole_minus_load": (wall - one["load_s"]) / (wall_n - timings_n["load_s"]),
            "speedup_profile_loop": one["total_s"] / timings_n["total_s"],
            **compare_profiles(run, run_n),
        }
        save()
        note(f"torchrun: {wall_n:.1f} s")

    if not args.no_reference:
        ref = reference(
            checkpoint, corpus, budget, args.device, args.dense, model, args.reference_batches
        )
        note("reference done")
        plain = ref["same_batches"]["steady_tokens_per_s"]
        prof = results["profile"]
        results["reference"] = ref
        results["ratios"] = {
            "steady": prof["steady_tokens_per_s"] / plain,
            "whole_minus_load": prof["tokens_per_s_whole_minus_load"] / plain,
            "peak_memory": (prof["peak_memory"] / ref["peak_memory"])
            if prof.get("peak_memory") and ref.get("peak_memory")
            else None,
        }
        dense_speed = ref.get("dense_rows", {}).get("steady_positions_per_s", math.nan)
        if dense_speed > 0:  # NaN when the dense rows made a single batch
            results["ratios"]["steady_vs_dense_rows"] = prof["steady_tokens_per_s"] / dense_speed
    save()
    report(results)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


def report(r: dict) -> None:
    p = r["profile"]
    outside = p["wall_s"] - p.get("stage_s", p["wall_s"])  # interpreter, imports, exit
    parts = ("load_s", "check_s", "tokenize_s", "batches_s", "setup_s", "total_s")
    rest = p.get("stage_s", p["wall_s"]) - sum(p.get(k, 0) for k in parts)
    print(
        f"profile command: {p['counted_tokens']:,} tokens in {p['batches']} batches; wall "
        f"{p['wall_s']:.1f} s = start-up and exit {outside:.1f} + load {p['load_s']:.1f} + "
        f"partition check {p.get('check_s', 0):.1f} + tokenize {p['tokenize_s']:.1f} + batches "
        f"{p.get('batches_s', 0):.1f} + profiling set-up {p.get('setup_s', 0):.1f} + first batch "
        f"(compiles) {p['first_batch_s']:.1f} + the other batches {p['steady_s']:.1f} + rest "
        f"{rest:.1f} s"
    )
    print(
        f"  whole command {p['tokens_per_s_whole']:,.0f} tok/s, minus load "
        f"{p['tokens_per_s_whole_minus_load']:,.0f} tok/s; steady state "
        f"{p['steady_tokens_per_s']:,.0f} tok/s; warm-up (first batch) {p['first_batch_s']:.1f} s"
    )
    print(
        f"  compiled graphs {p['graphs']} (recompiles {max(0, p['graphs'] - 1)}), "
        f"recompile-limit hits {p['limit_hits']} (log: {p['limit_warnings_in_log']}); padding "
        f"{100 * p['padding_share']:.2f}% of positions; peak memory "
        + (f"{p['peak_memory'] / 2**30:.2f} GiB" if p.get("peak_memory") else "-")
    )
    if "reference" in r:
        ref, ratios = r["reference"], r["ratios"]
        same = ref["same_batches"]
        print(
            f"reference, plain {'compiled ' if ref['compiled'] else ''}forward over the same "
            f"batches ({ref.get('timed', ref['batches'])} of {ref['batches']} timed): "
            f"{same['steady_tokens_per_s']:,.0f} tok/s steady (first batch "
            f"{same['first_batch_s']:.1f} s, {same['graphs']} graph(s)); load {ref['load_s']:.1f} s"
            + (f"; peak {ref['peak_memory'] / 2**30:.2f} GiB" if ref.get("peak_memory") else "")
        )
        if "dense_rows" in ref:
            print(
                "  same tokens as dense full rows: "
                f"{ref['dense_rows']['steady_positions_per_s']:,.0f} tok/s steady"
            )
        print(
            f"ratios: steady {ratios['steady']:.3f} (target >= 0.95), whole minus load "
            f"{ratios['whole_minus_load']:.3f} (>= 0.85)"
            + (
                f", peak memory {ratios['peak_memory']:.3f} (<= 1.10)"
                if ratios["peak_memory"]
                else ""
            )
            + (
                f", steady vs dense rows {ratios['steady_vs_dense_rows']:.3f}"
                if "steady_vs_dense_rows" in ratios
                else ""
            )
        )
    if "torchrun" in r:
        t = r["torchrun"]
        print(
            f"torchrun x{t['processes']}: wall {t['wall_s']:.1f} s "
            f"(load {t['rank0_load_s']:.1f} s), "
            f"speed-up whole minus load {t['speedup_whole_minus_load']:.2f}x, profiling loop "
            f"{t['speedup_profile_loop']:.2f}x; counts identical {t['counts_identical']} "
            f"({t['counts_moved']} of {t['selections']} selections moved), tokens identical "
            f"{t['tokens_identical']}, score sums identical {t['score_sums_identical']}"
        )


if __name__ == "__main__":
    main()
