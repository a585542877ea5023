"""``babelmoe steer`` timed against the plain model doing the same work, in the same run.

It writes a checkpoint of a named shape (random weights, the byte tokenizer) and a folder
corpus of nine languages (``bench_cli``'s writers), makes a run folder with ``babelmoe split``
and ``babelmoe profile`` (not timed), then times ``babelmoe steer RUN`` with its default
options as a subprocess. The reference is the same model loaded in this process doing, without
any hook, the same forwards: one perplexity pass over the same held-out texts per model the
silencing matrix evaluated, and the same generate calls (same prompts, same batches, same new
tokens) with the same fluency scoring. ``--steer-args`` passes options through.

Command and reference alternate ``--repeats`` times, each in a fresh process (both pay the
first calls' costs: a fresh process's first generate batch takes ~1 s more at 7B), after
the files written by the set-up are flushed to disk (``os.sync``; a 7B checkpoint written just
before still had gigabytes being written back while the first timed run ran). At 7B on a GPU,
greedy decoding is bound by the host launching kernels, so single runs vary by +-30%.

Printed: each repeat's wall time and two phases (``timings`` in interventions.json) against the
reference's, and the ratios of the medians (1.0 = the hooks cost nothing).

  python benchmarks/bench_steer.py --device cpu --shape tiny-llama --tokens 4000
  python benchmarks/bench_steer.py --device cuda --shape llama2-7b --tokens 20000 --out r.json
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_cli import LANGUAGES, run_command, write_checkpoint, write_corpus  # noqa: E402
from common import cli_env  # noqa: E402

from babelmoe.evaluate.encoding import encode, pad_token_id  # noqa: E402
from babelmoe.evaluate.perplexity import PerplexityConfig, perplexity  # noqa: E402
from babelmoe.evaluate.scoring import score_tails  # noqa: E402
from babelmoe.interventions.steering import generate  # noqa: E402
from babelmoe.models.loading import ModelSpec, load_model  # noqa: E402
from babelmoe.stages.heldout import heldout_documents  # noqa: E402
from babelmoe.stages.prune import load_run  # noqa: E402
from babelmoe.stages.steer import SteerConfig  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reference(run: Path, loaded, config: SteerConfig) -> dict[str, float]:
    """The plain model doing the command's forwards (module docstring); seconds per phase."""
    partition, profile = load_run(run)
    dev = loaded.device
    rows = [json.loads(line) for line in (run / "interventions/rows.jsonl").open()][1:]
    silence = [r for r in rows if r.get("kind") == "silence"]
    steer = [r for r in rows if r.get("kind") == "steer"]
    n_models = len({(r["condition"], r["target"], r["seed"]) for r in silence})
    docs = heldout_documents(profile)
    texts = [d.text for name in docs for d in docs[name][: config.max_documents or None]]
    ppl_config = PerplexityConfig(max_length=config.max_length, batch_size=config.batch_size)
    _sync(dev)
    start = time.perf_counter()
    for _ in range(n_models):
        perplexity(loaded.model, loaded.tokenizer, texts, ppl_config)
    _sync(dev)
    silencing = time.perf_counter() - start
    gen = config.generation
    prompts = [encode(loaded.tokenizer, r["prompt"])[: gen.max_prompt_tokens] for r in steer]
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
    pad = pad_token_id(loaded.tokenizer)
    start = time.perf_counter()
    for b in range(0, len(order), gen.batch_size):
        batch = [prompts[i] for i in order[b : b + gen.batch_size]]
        new = generate(loaded.model, loaded.tokenizer, partition, batch, [None] * len(batch), gen)
        requests = [(p + n, len(n)) for p, n in zip(batch, new, strict=True) if n]
        if requests:
            score_tails(loaded.model, requests, batch_size=config.batch_size, pad_id=pad)
    _sync(dev)
    steering = time.perf_counter() - start
    return {"silencing_s": silencing, "steering_s": steering, "models": n_models}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shape", default="tiny-llama")
    parser.add_argument("--tokens", type=int, default=4000, help="profiled tokens in all")
    parser.add_argument("--steer-args", default="", help="extra options of babelmoe steer")
    parser.add_argument("--repeats", type=int, default=3, help="command + reference rounds")
    parser.add_argument("--out", type=Path, help="write the numbers as JSON here")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: temporary)")
    parser.add_argument("--reference-of", type=Path, help=argparse.SUPPRESS)  # one reference
    args = parser.parse_args()
    if args.reference_of:  # in a fresh process, as the command runs
        summary = json.loads((args.reference_of / "interventions/interventions.json").read_text())
        config = SteerConfig(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in summary["config"].items()}
        )
        loaded = load_model(ModelSpec(source=str(args.workdir / "model"), device=args.device))
        ref = reference(args.reference_of, loaded, config)
        (args.workdir / "reference.json").write_text(json.dumps(ref))
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_steer_"))
    work.mkdir(parents=True, exist_ok=True)
    model_dir, corpus, run = work / "model", work / "corpus", work / "run"
    if not (model_dir / "config.json").is_file():
        write_checkpoint(model_dir, args.shape, args.device)
    write_corpus(corpus, args.tokens // len(LANGUAGES))
    cli = [sys.executable, "-m", "babelmoe.cli"]
    env = cli_env(ROOT)
    common = ["--model", str(model_dir), "--device", args.device]
    if not (run / "profile.json").is_file():
        run_command([*cli, "split", "--out", str(run), *common], work / "split.log", env)
        run_command(
            [
                *cli,
                "profile",
                str(run),
                *common,
                "--corpus",
                str(corpus),
                "-l",
                ",".join(LANGUAGES),
                "--budget",
                str(args.tokens // len(LANGUAGES)),
            ],
            work / "profile.log",
            env,
        )
    steer_argv = [*cli, "steer", str(run), *common, "--force", *shlex.split(args.steer_args)]
    os.sync()  # the set-up's files (a 7B checkpoint) reach the disk before anything is timed
    reference_argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--reference-of",
        str(run),
        "--workdir",
        str(work),
        "--device",
        args.device,
    ]
    repeats = []
    for r in range(args.repeats):
        wall = run_command(steer_argv, work / f"steer{r}.log", env)
        summary = json.loads((run / "interventions/interventions.json").read_text())
        run_command(reference_argv, work / f"reference{r}.log", env)
        ref = json.loads((work / "reference.json").read_text())
        repeats.append({"command_wall_s": wall, "command": summary["timings"], "reference": ref})
        print(json.dumps(repeats[-1]), flush=True)

    def med(get) -> float:
        return statistics.median(get(x) for x in repeats)

    result = {
        "shape": args.shape,
        "device": args.device,
        "repeats": repeats,
        "command_wall_s": med(lambda x: x["command_wall_s"]),
    }
    for phase in ("silencing_s", "steering_s"):
        command = med(lambda x, p=phase: x["command"].get(p, 0.0))
        plain = med(lambda x, p=phase: x["reference"][p])
        result[phase] = {
            "command": command,
            "reference": plain,
            "ratio": command / max(plain, 1e-9),
        }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
