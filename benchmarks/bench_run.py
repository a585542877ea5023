"""The main job as users run it, timed: ``babelmoe run`` with default options on a checkpoint of a
real shape (random weights, the byte tokenizer) and a nine-language folder corpus, with per-stage
wall times, and in the same run a reference for each GPU stage: the plain compiled forward over
the tokens that stage evaluates.

* profile (main run and each extra seed): the decoder stack (no hooks, no LM head), each layer
  compiled, over the profile's own batches (``bench_cli.reference``);
* sweep: the same stack over the sweep's own batches: the held-out windows of every evaluated
  (configuration, language) pair, i.e. held-out tokens x configurations, built by the same code
  (``babelmoe.evaluate.masked.plan_batches``); and the full causal LM (logits too), which is
  what perplexity needs;
* switching configurations: building the masks of all the sweep's configurations
  (``masked_ffns``), switching between them (``MaskedFFNs.use``), against cutting and restoring
  the weights of one configuration (``temporarily_pruned``: the surgery the sweep used before).

The corpus is ``bench_cli.write_corpus`` (97% short documents, log-normal around 250 tokens, 3%
long ones; Latin, CJK, Arabic, Devanagari, Bengali script) with enough text for the default
budget (50,000 tokens per language) and its 20% held out. Model loads are counted in the log
(``loading model``): the extra k-means seeds share the loaded model.

  python benchmarks/bench_run.py --device cpu --shape tiny-llama --budget 2000 --work /tmp/br
  python benchmarks/bench_run.py --device cuda --shape llama2-7b --out r.json --logs $OUT

Issue 25's targets (H100/H200, llama2-7b, defaults): sweep evaluation >= 0.8 x the plain
compiled forward over the same tokens x configurations; switching <= 0.1 s; whole run <= 240 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_cli import LANGUAGES, plain_forward, reference, run_command, write_checkpoint  # noqa: E402
from bench_cli import write_corpus as write_bench_corpus  # noqa: E402
from common import cli_env  # noqa: E402

from babelmoe.models.shapes import SHAPES  # noqa: E402
from babelmoe.stages.profile import ProfileConfig  # noqa: E402
from babelmoe.stages.run import TIMINGS_FILE, PipelineConfig  # noqa: E402


def sweep_plan(run: Path, tokenizer, documents_per_language: int | None) -> dict:
    """The main job's sweep as the runner pools it: its held-out texts, its drops, the pairs
    of each pass (the dense model with the first ratio) and every pass's batches, in order."""
    from babelmoe.evaluate import PerplexityConfig
    from babelmoe.evaluate.masked import MaskedEvalConfig, plan_batches
    from babelmoe.prune.sweep import SweepConfig, job_selection, plan_jobs
    from babelmoe.stages.heldout import heldout_documents
    from babelmoe.stages.prune import load_run

    main = PipelineConfig()
    config = SweepConfig(
        methods=main.sweep_methods,
        ratios=main.sweep_ratios,
        max_documents=documents_per_language,
        specificity=main.specificity,
    )
    partition, profile = load_run(run)
    documents = heldout_documents(profile, None, config.max_documents)
    texts = {name: [d.text for d in docs] for name, docs in documents.items()}
    jobs = plan_jobs(config, list(texts))
    groups: dict[float, list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(float(job.ratio), []).append(i)
    dense = groups.pop(0.0)
    groups[next(iter(groups))][:0] = dense
    ppl = PerplexityConfig(max_length=config.max_length, batch_size=config.batch_size)
    passes = [
        [(i, lang) for i in members for lang in jobs[i].eval_langs] for members in groups.values()
    ]
    batches, tokens = [], 0
    for pairs in passes:
        plan = plan_batches(tokenizer, texts, pairs, ppl, MaskedEvalConfig().batch_tokens)
        batches += plan.batches
        tokens += sum(plan.request_targets)
    drops = [None if (s := job_selection(job, profile)) is None else s.drop for job in jobs]
    return {
        "partition": partition,
        "texts": texts,
        "drops": drops,
        "passes": passes,
        "ppl": ppl,
        "batches": batches,
        "tokens": tokens,
    }


def masked_runs(model, tokenizer, plan: dict, device: torch.device) -> dict:
    """The sweep's masked evaluation in this process, eager and compiled (compilation
    included: dynamo is reset on entry), over the same passes: whole seconds of each."""
    from babelmoe.evaluate.masked import MaskedEvalConfig, masked_ffns, masked_perplexities
    from babelmoe.profile.core import compiled_layers

    out = {}
    for name, compiled in (("eager", False), ("compiled", True)):
        if compiled and device.type != "cuda":
            continue
        with masked_ffns(model, plan["partition"], plan["drops"]) as masks:
            started = time.perf_counter()
            with compiled_layers(model, compiled) as report:
                firsts = []
                for pairs in plan["passes"]:
                    _, spent = masked_perplexities(
                        model,
                        tokenizer,
                        masks,
                        plan["texts"],
                        pairs,
                        plan["ppl"],
                        MaskedEvalConfig(compile=False),
                        compiled=compiled,
                    )
                    firsts.append(spent.first_batch_s)
            total = time.perf_counter() - started
        out[name] = {"total_s": total, "first_batch_s": firsts[0], "graphs": report.graphs}
    return out


@torch.inference_mode()
def lm_forward(model, batches, device: torch.device, compiled: bool) -> dict:
    """The full causal LM (logits) over ``batches``, compiled layers: total and first batch."""
    from babelmoe.profile.core import compiled_layers

    with compiled_layers(model, compiled, deterministic=False):
        started = time.perf_counter()
        for step, batch in enumerate(batches):
            model(input_ids=batch.input_ids.to(device, non_blocking=True), use_cache=False)
            if step == 0:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                first = time.perf_counter() - started
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        total = time.perf_counter() - started
    return {"first_batch_s": first, "total_s": total, "steady_s": total - first}


def switching(model, partition, drops, device: torch.device) -> dict:
    """Seconds to build every configuration's masks, to switch configuration, and to cut and
    restore one configuration's weights (the surgery the sweep used before)."""
    from babelmoe.evaluate.masked import masked_ffns
    from babelmoe.prune.surgery import temporarily_pruned

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    sync()
    started = time.perf_counter()
    with masked_ffns(model, partition, drops) as masks:
        sync()
        build = time.perf_counter() - started
        started = time.perf_counter()
        for c in range(masks.n_configs):
            masks.use(c)
        sync()
        switch = (time.perf_counter() - started) / masks.n_configs
    drop = next(d for d in drops if d is not None)
    sync()
    started = time.perf_counter()
    with temporarily_pruned(model, partition, drop):
        sync()
        cut = time.perf_counter() - started
    return {
        "configurations": len(drops),
        "build_masks_s": build,
        "switch_s": switch,
        "surgery_one_configuration_s": cut,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", default="tiny-llama", choices=sorted(SHAPES))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--budget",
        type=int,
        default=ProfileConfig().token_budget,
        help="Tokens per language the corpus is written for and the run profiles (default: "
        "the run's own default).",
    )
    parser.add_argument("--work", type=Path, default=None, help="Folder to keep (else a temp dir).")
    parser.add_argument("--out", type=Path, default=None, help="Write the results as JSON here.")
    parser.add_argument("--logs", type=Path, default=None, help="The run's log here (else --work).")
    parser.add_argument("--no-reference", action="store_true", help="Skip the references.")
    parser.add_argument(
        "--no-profile-reference", action="store_true", help="Skip the profile's reference only."
    )
    parser.add_argument("--run-args", default="", help="Extra options for babelmoe run.")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_run_"))
    work.mkdir(parents=True, exist_ok=True)
    logs = args.logs or work
    logs.mkdir(parents=True, exist_ok=True)
    checkpoint, run, corpus = work / "model", work / "run", work / f"corpus-{args.budget}"
    results: dict = {
        "shape": args.shape,
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "budget_per_language": args.budget,
        "languages": LANGUAGES,
        "threads": torch.get_num_threads(),
    }

    def save() -> None:
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")

    began = time.perf_counter()

    def note(what: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f} s] {what}", flush=True)

    model = None
    if not (checkpoint / "config.json").exists():
        model = write_checkpoint(checkpoint, args.shape, args.device)
    if not corpus.exists():
        write_bench_corpus(corpus, args.budget)
    note("checkpoint and corpus written")
    import shlex
    import shutil

    shutil.rmtree(run, ignore_errors=True)
    env = cli_env(ROOT)
    argv = [sys.executable, "-m", "babelmoe.cli", "run", "--model", str(checkpoint)]
    argv += ["--device", args.device, "--corpus", str(corpus), "--budget", str(args.budget)]
    argv += ["--out", str(run), *shlex.split(args.run_args)]
    wall = run_command(argv, logs / "run.log", env)
    log = (logs / "run.log").read_text(errors="replace")
    stages = json.loads((run / TIMINGS_FILE).read_text())["stages_s"]
    sweep = json.loads((run / "sweep" / "sweep.json").read_text())
    timings = sweep.get("timings", {})
    results["run"] = {
        "wall_s": wall,
        "stages_s": stages,
        "outside_stages_s": wall - sum(stages.values()),
        "model_loads": log.count("loading model"),
        "sweep": timings,
        "sweep_rows": len(sweep["rows"]),
    }
    save()
    note(f"babelmoe run: {wall:.1f} s")
    if not args.no_reference:
        from babelmoe.models.loading import ModelSpec, load_model

        device = torch.device(args.device)
        compiled = device.type == "cuda"
        if model is None:
            model = load_model(ModelSpec(source=str(checkpoint), device=args.device)).model
        if not args.no_profile_reference:
            ref = reference(checkpoint, corpus, args.budget, args.device, False, model)
            results["profile_reference"] = ref
            note("profile reference done")
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        plan = sweep_plan(run, tokenizer, PipelineConfig().sweep_documents)
        batches = plan["batches"]
        stack = plain_forward(model, batches, device, compiled)
        lm = lm_forward(model, batches, device, compiled)
        results["sweep_reference"] = {
            "batches": len(batches),
            "tokens": plan["tokens"],
            "stack": stack,
            "lm": lm,
            "stack_eager": plain_forward(model, batches, device, False),
            "masked": masked_runs(model, tokenizer, plan, device),
            "switching": switching(model, plan["partition"], plan["drops"], device),
        }
        note("sweep reference done")
        save()
    report(results)
    save()
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


def report(r: dict) -> None:
    run = r["run"]
    stages = ", ".join(f"{k} {v:.1f}" for k, v in run["stages_s"].items())
    print(
        f"babelmoe run ({r['shape']}, {r['device']}): wall {run['wall_s']:.1f} s; stages (s): "
        f"{stages}; start-up and exit {run['outside_stages_s']:.1f} s; model loads "
        f"{run['model_loads']}"
    )
    s = run["sweep"]
    if "eval_total_s" in s:
        print(
            f"sweep: {s['configurations']} configurations, {s['eval_tokens']:,} tokens in "
            f"{s['eval_batches']} batches; masks {s.get('masks_s', 0):.2f} s, planning "
            f"{s['eval_plan_s']:.2f} s, evaluation {s['eval_total_s']:.2f} s (first batch "
            f"{s['eval_first_batch_s']:.2f} s), {s.get('graphs', 0)} graph(s)"
        )
    if "profile_reference" in r:
        p = r["profile_reference"]["same_batches"]
        print(
            f"profile reference (plain compiled stack, the profile's batches): total "
            f"{p['total_s']:.1f} s (first batch {p['first_batch_s']:.1f} s), steady "
            f"{p['steady_tokens_per_s']:,.0f} tok/s"
        )
    if "sweep_reference" in r:
        ref = r["sweep_reference"]
        stack, lm, sw = ref["stack"], ref["lm"], ref["switching"]
        tokens = ref["tokens"]
        print(
            f"sweep reference over the same {tokens:,} tokens x configurations "
            f"({ref['batches']} batches): stack {stack['total_s']:.2f} s (steady "
            f"{stack['steady_s']:.2f}), LM with logits {lm['total_s']:.2f} s (steady "
            f"{lm['steady_s']:.2f})"
        )
        eager = ref["stack_eager"]
        print(
            f"  plain stack eager {eager['total_s']:.2f} s; the sweep's masked evaluation in "
            "this process: "
            + ", ".join(
                f"{k} {v['total_s']:.2f} s (first batch {v['first_batch_s']:.2f} s, "
                f"{v['graphs']} graph(s))"
                for k, v in ref["masked"].items()
            )
        )
        if "eval_total_s" in s:
            first = s["passes"][0]["first_batch_s"]
            steady = s["eval_total_s"] - first
            print(
                f"ratios (plain time / sweep evaluation time, same tokens x configurations): "
                f"whole: stack {stack['total_s'] / s['eval_total_s']:.3f}, LM "
                f"{lm['total_s'] / s['eval_total_s']:.3f}; after the first batch: stack "
                f"{stack['steady_s'] / steady:.3f}, LM {lm['steady_s'] / steady:.3f}; sweep stage: "
                f"stack {stack['total_s'] / run['stages_s']['sweep']:.3f}"
            )
        print(
            f"switching: masks of {sw['configurations']} configurations built in "
            f"{sw['build_masks_s']:.3f} s, a switch {1e6 * sw['switch_s']:.1f} us; surgery of "
            f"one configuration (cut and restore) {sw['surgery_one_configuration_s']:.3f} s"
        )


if __name__ == "__main__":
    main()
