"""The bad-input catalogue: every subcommand, fed something wrong, answers with one line.

Each case runs ``babelmoe ARGV`` (in this process, which costs no imports; a subprocess only for
a resource limit) inside a fresh workspace holding a copy of a tiny run folder, and checks: a
non-zero exit, exactly one line on stderr (progress bars aside) that starts with
``babelmoe: error:``, says what is wrong (``match``) and what to do, no traceback, and nothing
new or changed anywhere in the workspace (no partial output).
"""

from __future__ import annotations

import contextlib
import json
import re
import resource
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from babelmoe.testing import MC_TASK_WITHOUT_METRICS
from tests.cli_helpers import (
    PROFILE_ARGS,
    SPLIT_ARGS,
    run_cli,
    subprocess_cli,
    tiny_checkpoint,
    tiny_corpus,
    tiny_run,
    tree,
)

# What follows the problem: "(what to do)", "; what to do" or usage's "(see babelmoe X --help)".
FIX = re.compile(r"\(.{8,}\)$|; .{8,}$")


@dataclass
class Workspace:
    """Paths a case may use; ``root`` is snapshotted before and after the case."""

    root: Path
    model: Path  # the tiny model the run was made with
    other_model: Path  # same shapes, other weights
    corpus: Path  # en.txt, fr.txt (a copy a case may spoil)
    run: Path  # partition (4 experts) + profile (a copy a case may spoil)
    other_split: Path  # a partition of the same model with another k-means seed
    empty: Path  # an empty folder
    file: Path  # a regular file

    @property
    def out(self) -> Path:
        """An output folder that does not exist yet."""
        return self.root / "out"


@dataclass
class Case:
    """One bad input: the command line, an optional spoiler run first, the expected message."""

    id: str
    argv: Callable[[Workspace], list]
    match: str
    setup: Callable[[Workspace], object] | None = None
    subprocess: Callable[[Workspace], Callable[[], None]] | None = None  # -> preexec_fn
    code: int | None = None  # the exit code, when the case pins it (3: the output location)


def model_args(w: Workspace) -> list:
    return ["--model", w.model, "--device", "cpu"]


def profile_argv(w: Workspace, *extra) -> list:
    return ["profile", w.run, *model_args(w), "--corpus", w.corpus, *PROFILE_ARGS, *extra]


def split_argv(w: Workspace, *extra) -> list:
    return ["split", "--out", w.out, *model_args(w), *SPLIT_ARGS, *extra]


def truncate(path: Path, keep: int = 100) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def flip_byte(path: Path, offset: int = -5) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def edit_json(path: Path, **changes) -> None:
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def spoil_model(w: Workspace, damage: Callable[[Path], object]) -> None:
    """A copy of the model at ``root/m`` with its weights file damaged."""
    shutil.copytree(w.model, w.root / "m")
    damage(w.root / "m" / "model.safetensors")


def swap_partition(w: Workspace) -> None:
    """Put another partition beside the run's profile (the profile no longer matches it)."""
    for suffix in (".json", ".safetensors"):
        shutil.copy2(w.other_split / f"partition{suffix}", w.run / f"partition{suffix}")


def more_experts_run(w: Workspace) -> Path:
    """A run folder whose profile has 8 experts per layer (made from the run's, no model)."""
    import torch

    from babelmoe.profile.artifact import load_profile, save_profile

    profile = load_profile(w.run)
    for name in ("counts", "score_sums", "unit_counts"):
        value = getattr(profile, name)
        setattr(profile, name, torch.cat([value, value], dim=-1))
    save_profile(w.root / "run8", profile)
    return w.root / "run8"


def delete_key(path: Path, key: str) -> None:
    meta = json.loads(path.read_text())
    del meta[key]
    path.write_text(json.dumps(meta))


def swap_languages(path: Path) -> None:
    """Swap the first two language records of a profile's JSON (the tensors stay)."""
    meta = json.loads(path.read_text())
    meta["languages"][:2] = meta["languages"][1::-1]
    path.write_text(json.dumps(meta))


def legacy_without(folder: Path, name: str, key: str) -> None:
    """Make ``name`` an artifact as written before its metadata was checksummed (no checksum in
    the tensor file's header), then delete ``key`` from its JSON."""
    from safetensors.torch import load_file, save_file

    from babelmoe.artifacts import sha256_file

    tensors = load_file(str(folder / f"{name}.safetensors"))
    save_file(tensors, str(folder / f"{name}.safetensors"))
    meta = json.loads((folder / f"{name}.json").read_text())
    meta["tensors_sha256"] = sha256_file(folder / f"{name}.safetensors")
    meta.pop("meta_sha256", None)
    del meta[key]
    (folder / f"{name}.json").write_text(json.dumps(meta))


def one_document(w: Workspace) -> None:
    (w.corpus / "en.txt").write_text("one single document without any blank line\n")


def file_size_limit() -> None:
    """In the child: no file may grow beyond 512 bytes (writes then fail with EFBIG)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))


GOOD_TASK = MC_TASK_WITHOUT_METRICS
GOOD_DOCS = [
    {"q": "The capital of France is", "choices": ["Paris", "Rome"], "gold": 0},
    {"q": "Berlin is in", "choices": ["Peru", "Germany"], "gold": 1},
]


def task_file(w: Workspace, text: str | None = None, docs: str | None = None) -> Path:
    """``root/task.yaml`` (the good task, or ``text``) beside ``root/task.jsonl`` (the good
    documents, or ``docs``)."""
    data = w.root / "task.jsonl"
    if not data.exists():
        data.write_text(
            docs if docs is not None else "".join(json.dumps(d) + "\n" for d in GOOD_DOCS)
        )
    path = w.root / "task.yaml"
    path.write_text(GOOD_TASK.format(data=data) if text is None else text)
    return path


def replace_in_task(w: Workspace, old: str, new: str) -> Path:
    path = task_file(w)
    path.write_text(path.read_text().replace(old, new))
    return path


def eval_tasks_argv(w: Workspace, *extra) -> list:
    return ["evaluate", w.model, "--run", w.run, "--out", w.out, "--device", "cpu",
            "--tasks", w.root / "task.yaml", *extra]  # fmt: skip


def sweep_tasks_argv(w: Workspace, *extra) -> list:
    return ["sweep", w.run, *model_args(w), "--tasks", w.root / "task.yaml", *extra]


def write_architectures(w: Workspace, table: object) -> Path:
    path = w.root / "arch.json"
    path.write_text(json.dumps(table))
    return path


LLAMA_NO_GATE = {"layers": "model.layers", "mlp": "mlp", "up": "up_proj", "down": "down_proj"}
LLAMA_ATTENTION = {"layers": "model.layers", "mlp": "self_attn", "up": "q_proj", "down": "o_proj"}


def gateless_pruned(w: Workspace) -> Path:
    """A pruned folder as a gate-less architecture entry used to write it: every layer's
    ``gate_proj`` keeps the full width beside the cut ``up_proj``."""
    from safetensors.torch import load_file, save_file

    out = w.root / "pruned"
    result = run_cli(["prune", w.run, "--ratio", "0.25", "-l", "en", *model_args(w), "--out", out])
    assert result.code == 0, result.stderr
    full = load_file(str(w.model / "model.safetensors"))
    cut = load_file(str(out / "model.safetensors"))
    for name in cut:
        if name.endswith("gate_proj.weight"):
            cut[name] = full[name]
    save_file(cut, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


CASES: list[Case] = [
    # --- model inputs
    Case("model-missing-folder", lambda w: split_argv(w, "--model", w.root / "nope"),
         r"no such model folder"),
    Case("model-missing-gguf", lambda w: split_argv(w, "--model", w.root / "nope.gguf"),
         r"no such GGUF file"),
    Case("model-corrupt-gguf", lambda w: split_argv(w, "--model", w.root / "bad.gguf"),
         r"cannot read GGUF file .*bad\.gguf",
         setup=lambda w: (w.root / "bad.gguf").write_bytes(b"GGUF\x03\x00junk" * 100)),
    Case("model-empty-folder", lambda w: split_argv(w, "--model", w.empty),
         r"cannot load model"),
    Case("model-binary-config", lambda w: split_argv(w, "--model", w.root / "m"),
         r"cannot load model",
         setup=lambda w: ((w.root / "m").mkdir(), (w.root / "m/config.json").write_bytes(
             b"\x00\xff\xfe binary")),
         ),
    Case("model-unknown-architecture", lambda w: split_argv(w, "--model", w.root / "bert"),
         r"unknown architecture 'bert'",
         setup=lambda w: ((w.root / "bert").mkdir(), (w.root / "bert/config.json").write_text(
             json.dumps({"model_type": "bert", "architectures": ["BertForMaskedLM"]}))),
         ),
    Case("model-corrupt-weights", lambda w: split_argv(w, "--model", w.root / "m"),
         r"cannot load model .*header",
         setup=lambda w: spoil_model(w, lambda p: p.write_bytes(b"junk" * 10))),
    Case("model-truncated-weights", lambda w: split_argv(w, "--model", w.root / "m"),
         r"cannot load model .*header",
         setup=lambda w: spoil_model(w, lambda p: p.write_bytes(p.read_bytes()[:2000]))),
    Case("model-missing-weights", lambda w: split_argv(w, "--model", w.root / "m"),
         r"cannot load model .*no file named model\.safetensors",
         setup=lambda w: spoil_model(w, lambda p: p.unlink())),
    Case("model-bad-dtype", lambda w: split_argv(w, "--dtype", "float8"), r"unknown dtype"),
    Case("model-bad-device", lambda w: split_argv(w, "--device", "tpu"), r"unknown device"),
    Case("model-missing-architectures-file",
         lambda w: split_argv(w, "--architectures", w.root / "nope.json"),
         r"no such architectures file"),
    Case("model-binary-architectures-file",
         lambda w: split_argv(w, "--architectures", w.file), r"is not valid JSON"),
    Case("model-incomplete-architecture-entry",
         lambda w: split_argv(w, "--architectures", w.root / "arch.json"),
         r"incomplete architecture entry",
         setup=lambda w: (w.root / "arch.json").write_text('{"llama": {"layers": "x"}}')),
    Case("model-is-a-regular-file", lambda w: split_argv(w, "--model", w.file),
         r"cannot load model .*file\.bin"),
    # --- split
    Case("split-experts-0", lambda w: split_argv(w, "--experts", "0"), r"--experts must be >= 1"),
    Case("split-experts-wider-than-ffn", lambda w: split_argv(w, "--experts", "1000"),
         r"--experts 1000 is larger than the FFN width 64"),
    Case("split-experts-not-a-number", lambda w: split_argv(w, "--experts", "many"),
         r"Invalid value for '--experts'"),
    Case("split-bad-source", lambda w: split_argv(w, "--source", "down"), r"unknown --source"),
    Case("split-max-iter-0", lambda w: split_argv(w, "--max-iter", "0"), r"--max-iter must be"),
    Case("split-out-under-a-file", lambda w: split_argv(w, "--out", w.file / "sub"),
         r"a file is in the way"),
    Case("split-out-is-a-file", lambda w: split_argv(w, "--out", w.file), r"a file is in the way"),
    Case("split-out-holds-another-partition",
         lambda w: split_argv(w, "--out", w.run, "--seed", "3"),
         r"already holds a different partition artifact \(differs in: config\).*--force"),
    Case("split-missing-out", lambda w: ["split", *model_args(w)], r"Missing option '--out'"),
    # --- profile
    Case("profile-unknown-language", lambda w: profile_argv(w, "--languages", "en,xx"),
         r"no xx\.txt or xx\.jsonl in .*corpus \(available: en, fr\)"),
    Case("profile-language-not-in-corpus", lambda w: profile_argv(w, "--languages", "en,de"),
         r"\bde\b|German"),
    Case("profile-missing-corpus", lambda w: profile_argv(w, "--corpus", w.root / "nope"),
         r"unknown corpus source"),
    Case("profile-empty-corpus-file", lambda w: profile_argv(w), r"en\.txt is empty",
         setup=lambda w: (w.corpus / "en.txt").write_text("\n\n")),
    Case("profile-binary-corpus-file", lambda w: profile_argv(w), r"NUL byte",
         setup=lambda w: (w.corpus / "fr.txt").write_bytes(b"\x7fELF\x00\x01\x02" * 64)),
    Case("profile-non-utf8-corpus-file", lambda w: profile_argv(w), r"not valid UTF-8",
         setup=lambda w: (w.corpus / "fr.txt").write_bytes("été".encode("latin-1"))),
    Case("profile-corpus-file-is-a-folder", lambda w: profile_argv(w),
         r"corpus/en\.txt is a folder, not a corpus file \(put the en documents in a file",
         setup=lambda w: ((w.corpus / "en.txt").unlink(), (w.corpus / "en.txt").mkdir())),
    Case("profile-duplicate-languages", lambda w: profile_argv(w, "--languages", "en,en"),
         r"duplicate languages"),
    Case("profile-top-frac-0", lambda w: profile_argv(w, "--top-frac", "0"),
         r"--top-frac must be in \(0, 1\]"),
    Case("profile-budget-0", lambda w: profile_argv(w, "--budget", "0"), r"--budget must be >= 1"),
    Case("profile-batch-size-0", lambda w: profile_argv(w, "--batch-size", "0"),
         r"--batch-size must be >= 1"),
    Case("profile-heldout-1", lambda w: profile_argv(w, "--heldout", "1.0"),
         r"--heldout must be in \[0, 1\)"),
    Case("profile-bad-norm", lambda w: profile_argv(w, "--norm", "l3"), r"unknown --norm 'l3'"),
    Case("profile-max-length-1", lambda w: profile_argv(w, "--max-length", "1"),
         r"--max-length must be >= 2"),
    Case("profile-bad-selection", lambda w: profile_argv(w, "--selection", "top"),
         r"unknown --selection 'top'"),
    Case("profile-corpus-is-a-file", lambda w: profile_argv(w, "--corpus", w.file),
         r"unknown corpus source .*file\.bin"),
    Case("profile-corpus-jsonl-without-text", lambda w: profile_argv(w),
         r"en\.jsonl line 1: no text",
         setup=lambda w: ((w.corpus / "en.txt").unlink(),
                          (w.corpus / "en.jsonl").write_text('{"text": 1}\n'))),
    Case("profile-other-dtype-than-split", lambda w: profile_argv(w, "--dtype", "float16"),
         r"partition was made for other weights .*float16; another --dtype"),
    Case("profile-no-partition", lambda w: ["profile", w.empty, *model_args(w)],
         r"no partition artifact"),
    Case("profile-partition-of-another-model",
         lambda w: profile_argv(w, "--model", w.other_model),
         r"partition was made for other weights \(.*llama\) than the model given \(.*llama"),
    Case("profile-truncated-partition", lambda w: profile_argv(w), r"truncated or corrupted",
         setup=lambda w: truncate(w.run / "partition.safetensors")),
    Case("profile-flipped-byte-partition", lambda w: profile_argv(w), r"truncated or corrupted",
         setup=lambda w: flip_byte(w.run / "partition.safetensors")),
    Case("profile-partition-schema-version", lambda w: profile_argv(w),
         r"schema version 99, this babelmoe reads 1",
         setup=lambda w: edit_json(w.run / "partition.json", schema_version=99)),
    Case("profile-run-holds-another-profile", lambda w: profile_argv(w, "--budget", "300"),
         r"already holds a different profile artifact \(differs in: .*config.*--force"),
    # --- analyse, report, diff
    Case("analyse-truncated-profile", lambda w: ["analyse", w.run], r"truncated or corrupted",
         setup=lambda w: truncate(w.run / "profile.safetensors", 300)),
    Case("analyse-flipped-byte-profile", lambda w: ["analyse", w.run], r"truncated or corrupted",
         setup=lambda w: flip_byte(w.run / "profile.safetensors")),
    Case("analyse-profile-schema-version", lambda w: ["analyse", w.run], r"schema version 2",
         setup=lambda w: edit_json(w.run / "profile.json", schema_version=2)),
    Case("analyse-profile-json-not-json", lambda w: ["analyse", w.run],
         r"profile.json is corrupted",
         setup=lambda w: (w.run / "profile.json").write_bytes(b"\x00\x01garbage")),
    Case("analyse-partition-passed-as-profile", lambda w: ["analyse", w.run],
         r"not a profile artifact \(kind: partition\)",
         setup=lambda w: shutil.copy2(w.run / "partition.json", w.run / "profile.json")),
    Case("analyse-no-profile", lambda w: ["analyse", w.empty], r"no profile artifact"),
    Case("analyse-bad-group", lambda w: ["analyse", w.run, "--group", "Romance"],
         r"bad --group 'Romance'"),
    Case("analyse-unknown-metric", lambda w: ["analyse", w.run, "--metric", "manhattan"],
         r"unknown metric\(s\): manhattan"),
    Case("analyse-negative-bootstrap", lambda w: ["analyse", w.run, "--bootstrap", "-1"],
         r"--bootstrap must be >= 0, got -1"),
    Case("analyse-seed-run-of-other-shape",
         lambda w: ["analyse", w.run, "--seed-run", more_experts_run(w)],
         r"seed run .*run8 does not match"),
    Case("report-not-analysed", lambda w: ["report", w.run], r"analys"),
    # --- steer (interventions)
    Case("steer-language-not-profiled",
         lambda w: ["steer", w.run, "-l", "en,de", *model_args(w)], r"'de' was not profiled"),
    Case("steer-factor-infinite",
         lambda w: ["steer", w.run, "--factors", "1,inf", *model_args(w)],
         r"not a finite positive number"),
    Case("steer-factor-zero", lambda w: ["steer", w.run, "--factors", "0", *model_args(w)],
         r"not a finite positive number"),
    Case("steer-empty-prompt-set",
         lambda w: ["steer", w.run, "--prompts", "0", "--no-neutral", *model_args(w)],
         r"prompt set is empty"),
    Case("steer-unknown-rule", lambda w: ["steer", w.run, "--rule", "nope", *model_args(w)],
         r"unknown selection rule"),
    Case("steer-missing-run", lambda w: ["steer", w.root / "nope", *model_args(w)],
         r"no partition artifact in .*nope"),
    Case("diff-missing-run", lambda w: ["diff", w.run, w.root / "nope", "--out", w.out],
         r"no profile artifact"),
    Case("diff-other-expert-count",
         lambda w: ["diff", w.run, more_experts_run(w), "--out", w.out],
         r"4 experts but .*run8 has 2 layers x 8 experts"),
    Case("diff-out-is-a-file", lambda w: ["diff", w.run, w.run, "--out", w.file],
         r"cannot create the folder .*file\.bin: a file is in the way"),
    # --- prune, sweep, evaluate
    Case("prune-ratio-1", lambda w: ["prune", w.run, "--ratio", "1.0", "-l", "en", *model_args(w)],
         r"ratio"),
    Case("prune-unprofiled-language",
         lambda w: ["prune", w.run, "--ratio", "0.25", "-l", "zh", *model_args(w)],
         r"'zh' was not profiled \(profiled: en, fr\)"),
    Case("prune-unknown-method",
         lambda w: ["prune", w.run, "--method", "magic", "--ratio", "0.25", *model_args(w)],
         r"magic"),
    Case("prune-negative-ratio",
         lambda w: ["prune", w.run, "--ratio", "-0.5", "-l", "en", *model_args(w)],
         r"ratio must be in \[0, 1\)"),
    Case("prune-profile-of-another-partition",
         lambda w: ["prune", w.run, "--ratio", "0.25", "-l", "en", *model_args(w)],
         r"profile was counted with partition \w+, but the run folder's partition is \w+",
         setup=swap_partition),
    Case("prune-out-is-a-file-even-with-force",
         lambda w: ["prune", w.run, "--ratio", "0.25", "-l", "en", *model_args(w), "--out", w.file,
                    "--force"],
         r"file\.bin exists and is not a pruned model \(it is never replaced\)"),
    Case("sweep-ratio-not-a-number", lambda w: ["sweep", w.run, "--ratios", "0.1,abc"],
         r"not a list of numbers: '0.1,abc'"),
    Case("sweep-ratio-1", lambda w: ["sweep", w.run, "--ratios", "1.0", *model_args(w)],
         r"ratio"),
    Case("sweep-profile-of-another-partition", lambda w: ["sweep", w.run, *model_args(w)],
         r"profile was counted with partition", setup=swap_partition),
    Case("sweep-unknown-method", lambda w: ["sweep", w.run, "--methods", "magic", *model_args(w)],
         r"'magic' cannot be swept"),
    Case("evaluate-run-without-profile", lambda w: ["evaluate", w.model, "--run", w.empty],
         r"no profile artifact"),
    Case("evaluate-unprofiled-language",
         lambda w: ["evaluate", w.model, "--run", w.run, "-l", "zh", "--out", w.out],
         r"'zh' was not profiled"),
    Case("evaluate-bad-mgsm-mode",
         lambda w: ["evaluate", w.model, "--run", w.run, "--mgsm-mode", "fast", "--out", w.out],
         r"unknown --mgsm-mode 'fast'"),
    Case("evaluate-missing-task-file",
         lambda w: ["evaluate", w.model, "--run", w.run, "--xcsqa", w.root / "nope",
                    "--out", w.out],
         r"--xcsqa .*nope: no such file or folder"),
    Case("evaluate-batch-size-0",
         lambda w: ["evaluate", w.model, "--run", w.run, "--batch-size", "0", "--out", w.out],
         r"batch_size must be >= 1"),
    Case("evaluate-out-under-a-file",
         lambda w: ["evaluate", w.model, "--run", w.run, "--out", w.file / "eval"],
         r"a file is in the way"),
    # --- the pipeline and the program
    Case("run-seed-among-extra-seeds",
         lambda w: ["run", "--out", w.out, "--seed", "1", "--extra-seeds", "1,2"],
         r"--seed 1 is also among the extra seeds"),
    Case("run-extra-seeds-not-numbers", lambda w: ["run", "--out", w.out, "--extra-seeds", "a"],
         r"--extra-seeds must be integers"),
    Case("run-folder-holds-another-partition",
         lambda w: ["run", "--out", w.run, *model_args(w), "--corpus", w.corpus,
                    "--languages", "en,fr", "--experts", "8"],
         r"already holds a different partition artifact.*--force"),
    Case("unknown-subcommand", lambda w: ["frobnicate"], r"No such command 'frobnicate'"),
    # --- issue 15: the last tracebacks, altered metadata, asked-for work, new commands/options
    Case("split-seed-overflow", lambda w: split_argv(w, "--seed", "99999999999999999999"),
         r"--seed must be in \[0, 4294967295\], got 99999999999999999999"),
    Case("split-seed-negative", lambda w: split_argv(w, "--seed", "-1"), r"--seed must be in"),
    Case("split-out-under-proc", lambda w: split_argv(w, "--out", "/proc/babelmoe-run"),
         r"/proc/babelmoe-run", code=3),
    Case("split-out-empty", lambda w: split_argv(w, "--out", ""),
         r"empty value for --out \(an unset shell variable\?\)"),
    Case("split-out-is-a-file-exit-3", lambda w: split_argv(w, "--out", w.file),
         r"a file is in the way", code=3),
    Case("model-path-with-spaces-missing", lambda w: split_argv(w, "--model", "no such/model"),
         r"no such model folder: no such/model"),
    Case("profile-partition-config-deleted", lambda w: profile_argv(w),
         r"partition\.json was altered after it was written",
         setup=lambda w: delete_key(w.run / "partition.json", "config")),
    Case("profile-partition-legacy-without-n-experts", lambda w: profile_argv(w),
         r"partition\.json lacks required field\(s\): n_experts",
         setup=lambda w: legacy_without(w.run, "partition", "n_experts")),
    Case("profile-one-document-corpus", lambda w: profile_argv(w), r"--heldout 0",
         setup=one_document),
    Case("profile-batch-tokens-0", lambda w: profile_argv(w, "--batch-tokens", "0"),
         r"--batch-tokens"),
    Case("analyse-profile-languages-swapped", lambda w: ["analyse", w.run],
         r"profile\.json was altered after it was written",
         setup=lambda w: swap_languages(w.run / "profile.json")),
    Case("analyse-profile-key-deleted", lambda w: ["analyse", w.run],
         r"profile\.json was altered after it was written",
         setup=lambda w: delete_key(w.run / "profile.json", "corpus")),
    Case("analyse-legacy-profile-without-config", lambda w: ["analyse", w.run],
         r"profile\.json lacks required field\(s\): config",
         setup=lambda w: legacy_without(w.run, "profile", "config")),
    Case("analyse-seed-overflow", lambda w: ["analyse", w.run, "--seed", "99999999999999999999"],
         r"--seed must be in"),
    Case("report-summary-without-languages", lambda w: ["report", w.run],
         r"summary\.json lacks required field\(s\): languages \(re-run `babelmoe analyse",
         setup=lambda w: (run_cli(["analyse", w.run, "--bootstrap", "0", "--no-figures"]),
                          delete_key(w.run / "analysis" / "summary.json", "languages"))),
    Case("diff-top-k-negative", lambda w: ["diff", w.run, w.run, "--out", w.out, "--top-k", "-1"],
         r"--top-k must be >= 1, got -1"),
    Case("diff-profile-altered", lambda w: ["diff", w.run, w.run, "--out", w.out],
         r"profile\.json was altered", setup=lambda w: swap_languages(w.run / "profile.json")),
    Case("prune-profile-config-deleted",
         lambda w: ["prune", w.run, "--ratio", "0.25", "-l", "en", *model_args(w)],
         r"profile\.json was altered",
         setup=lambda w: delete_key(w.run / "profile.json", "config")),
    Case("prune-seed-negative",
         lambda w: ["prune", w.run, "--ratio", "0.25", "-l", "en", "--seed", "-3", *model_args(w)],
         r"--seed must be in"),
    Case("prune-file-size-limit",
         lambda w: ["-q", "prune", w.run, "--ratio", "0.25", "-l", "en", *model_args(w),
                    "--out", w.out],
         r"file too large writing /\S+ \(the file size limit, ulimit -f",
         subprocess=lambda w: file_size_limit, code=3),
    Case("sweep-random-seed-negative",
         lambda w: ["sweep", w.run, "--random-seeds", "0,-1", *model_args(w)],
         r"--random-seeds must be in"),
    Case("sweep-profile-altered", lambda w: ["sweep", w.run, *model_args(w)],
         r"profile\.json was altered", setup=lambda w: swap_languages(w.run / "profile.json")),
    Case("evaluate-mgsm-folder-without-files",
         lambda w: ["evaluate", w.model, "--run", w.run, "--mgsm", w.empty, "--out", w.out],
         r"--mgsm .*empty: no mgsm_\{lang\}\.tsv for any asked language \(looked for .*en"),
    Case("evaluate-xcsqa-folder-without-files",
         lambda w: ["evaluate", w.model, "--run", w.run, "--xcsqa", w.empty, "--out", w.out],
         r"--xcsqa .*empty: no \{lang\}/dev\.jsonl for any asked language"),
    Case("evaluate-malformed-mgsm-file",
         lambda w: ["evaluate", w.model, "--run", w.run, "--mgsm", w.root / "mgsm",
                    "--out", w.out, "--device", "cpu"],
         r"mgsm_en\.tsv:1: expected question TAB answer",
         setup=lambda w: ((w.root / "mgsm").mkdir(),
                          (w.root / "mgsm/mgsm_en.tsv").write_text("no tab here\n"))),
    Case("evaluate-num-fewshot-negative",
         lambda w: ["evaluate", w.model, "--run", w.run, "--num-fewshot", "-1", "--out", w.out],
         r"--num-fewshot must be >= 0"),
    Case("evaluate-profile-altered", lambda w: ["evaluate", w.model, "--run", w.run],
         r"profile\.json was altered", setup=lambda w: swap_languages(w.run / "profile.json")),
    Case("run-out-empty", lambda w: ["run", "--out", "", *model_args(w)],
         r"empty value for --out"),
    Case("run-extra-seed-overflow",
         lambda w: ["run", "--out", w.out, "--extra-seeds", "1,99999999999"],
         r"--extra-seeds must be in"),
    Case("languages-min-share-above-1",
         lambda w: ["languages", "--corpus", w.corpus, "--model", "none", "--min-share", "2"],
         r"--min-share must lie in \(0, 1\], got 2"),
    Case("languages-min-tokens-negative",
         lambda w: ["languages", "--corpus", w.corpus, "--min-tokens", "-5"],
         r"--min-tokens must be >= 0, got -5"),
    Case("languages-min-tokens-without-a-model",
         lambda w: ["languages", "--corpus", w.corpus, "--model", "none", "--min-tokens", "5"],
         r"--min-tokens needs token counts"),
    Case("languages-out-empty", lambda w: ["languages", "--out", ""], r"empty value for --out"),
    Case("study-budget-0", lambda w: ["study", "--out", w.out, "--budget", "0"],
         r"--budget must be >= 1"),
    Case("study-experts-0", lambda w: ["study", "--out", w.out, "--experts", "0"],
         r"--experts must be >= 1"),
    Case("study-seed-negative", lambda w: ["study", "--out", w.out, "--seed", "-1"],
         r"--seed must be in"),
    Case("study-bootstrap-negative", lambda w: ["study", "--out", w.out, "--bootstrap", "-1"],
         r"--bootstrap must be >= 0, got -1"),
    Case("study-out-empty", lambda w: ["study", "--out", ""], r"empty value for --out"),
    # --- issue 22: stale or fabricated numbers, task files before the model loads
    Case("sweep-tasks-only-commas", lambda w: ["sweep", w.run, *model_args(w), "--tasks", ","],
         r"--tasks ',' names no task"),
    Case("evaluate-tasks-only-commas",
         lambda w: ["evaluate", w.model, "--run", w.run, "--out", w.out, "--tasks", " , "],
         r"--tasks ' , ' names no task"),
    Case("sweep-limit-without-tasks", lambda w: ["sweep", w.run, *model_args(w), "--limit", "5"],
         r"--limit applies to --tasks, and no --tasks was given"),
    Case("sweep-num-fewshot-without-tasks",
         lambda w: ["sweep", w.run, *model_args(w), "--num-fewshot", "2"],
         r"--num-fewshot applies to --tasks"),
    Case("evaluate-limit-without-tasks",
         lambda w: ["evaluate", w.model, "--run", w.run, "--out", w.out, "--limit", "5"],
         r"--limit applies to tasks, and none was asked"),
    Case("evaluate-num-fewshot-without-tasks",
         lambda w: ["evaluate", w.model, "--run", w.run, "--out", w.out, "--num-fewshot", "1"],
         r"--num-fewshot applies to --tasks"),
    Case("profile-checkpoint-minutes-inf", lambda w: profile_argv(w, "--checkpoint-minutes", "inf"),
         r"--checkpoint-minutes must be a finite number > 0, got inf"),
    Case("profile-checkpoint-minutes-nan", lambda w: profile_argv(w, "--checkpoint-minutes", "nan"),
         r"--checkpoint-minutes must be a finite number > 0, got nan"),
    Case("profile-checkpoint-minutes-0", lambda w: profile_argv(w, "--checkpoint-minutes", "0"),
         r"--checkpoint-minutes must be a finite number > 0, got 0"),
    Case("profile-checkpoint-minutes-negative",
         lambda w: profile_argv(w, "--checkpoint-minutes", "-1"), r"must be a finite number > 0"),
    Case("model-architectures-gated-family-without-gate",
         lambda w: ["--architectures", write_architectures(w, {"llama": LLAMA_NO_GATE}), "prune",
                    w.run, "--ratio", "0.25", "-l", "en", *model_args(w), "--out", w.out],
         r"'gate_proj' of the same shape as 'up_proj' .* declares no gate.*\"gate\": "
         r"\"gate_proj\""),
    Case("model-architectures-builtin-pointing-at-attention",
         lambda w: split_argv(w, "--architectures",
                              write_architectures(w, {"llama": LLAMA_ATTENTION})),
         r"finds projections of width 32 \(self_attn\.q_proj\), but the config's "
         r"intermediate_size is 64: it does not point at the FFN; .*replacing the built-in"),
    Case("model-architectures-field-of-wrong-type",
         lambda w: split_argv(w, "--architectures",
                              write_architectures(w, {"x": {**LLAMA_NO_GATE, "layers": 3}})),
         r"architecture entry 'x': field 'layers' is 3, not a dotted path or a list of them"),
    Case("model-architectures-flag-not-a-bool",
         lambda w: split_argv(w, "--architectures",
                              write_architectures(w, {"x": {**LLAMA_NO_GATE, "conv1d": "no"}})),
         r"field 'conv1d' is \"no\", not true or false"),
    Case("model-architectures-layers-list-of-numbers",
         lambda w: split_argv(w, "--architectures",
                              write_architectures(w, {"x": {**LLAMA_NO_GATE, "layers": [1]}})),
         r"field 'layers' is \[1\], not a dotted path"),
    Case("model-architectures-entry-is-a-string",
         lambda w: split_argv(w, "--architectures", write_architectures(w, {"m": "lama"})),
         r"architecture entry 'm' is \"lama\", not an object of fields \(or the name of a "
         r"known family"),
    Case("model-architectures-entry-is-a-list",
         lambda w: split_argv(w, "--architectures", write_architectures(w, {"m": [1, 2]})),
         r"architecture entry 'm' is \[1, 2\], not an object of fields"),
    Case("evaluate-gateless-pruned-model",
         lambda w: ["evaluate", gateless_pruned(w), "--run", w.run, "--out", w.out,
                    "--device", "cpu"],
         r"pruned: its weights do not fit the model its config describes \(size mismatch for "
         r"model\.layers\.0\.mlp\.gate_proj\.weight"),
    Case("evaluate-task-yaml-malformed", eval_tasks_argv, r"task\.yaml: line 2: not valid YAML",
         setup=lambda w: task_file(w, text="task: [\n  oops")),
    Case("evaluate-task-yaml-empty", eval_tasks_argv, r"task\.yaml: is empty",
         setup=lambda w: task_file(w, text="")),
    Case("evaluate-task-yaml-a-list", eval_tasks_argv,
         r"task\.yaml: holds a list, not a mapping of fields",
         setup=lambda w: task_file(w, text="- task: a\n- task: b\n")),
    Case("evaluate-task-yaml-without-task-name", eval_tasks_argv,
         r"task\.yaml: task: missing \(add a line `task: my_task_name`\)",
         setup=lambda w: replace_in_task(w, "task: capitals\n", "")),
    Case("evaluate-task-yaml-task-name-a-number", eval_tasks_argv,
         r"task\.yaml: task: 7 is not a task name",
         setup=lambda w: replace_in_task(w, "task: capitals", "task: 7")),
    Case("evaluate-task-yaml-wrong-output-type", eval_tasks_argv,
         r"task\.yaml: output_type: unknown 'multiple-choice' \(use one of",
         setup=lambda w: replace_in_task(w, "multiple_choice", "multiple-choice")),
    Case("evaluate-task-template-names-missing-field", eval_tasks_argv,
         r"task\.yaml: doc_to_text: 'question' is undefined in document 1 of split 'test' "
         r"\(its fields: choices, gold, q\)",
         setup=lambda w: replace_in_task(w, "{{q}}", "{{question}}")),
    Case("evaluate-task-choices-field-missing", eval_tasks_argv,
         r"task\.yaml: doc_to_choice: 'options' is neither a field of the data",
         setup=lambda w: replace_in_task(w, "doc_to_choice: choices", "doc_to_choice: options")),
    Case("evaluate-task-target-out-of-range", eval_tasks_argv,
         r"doc_to_target: gives 7 for document 1 of split 'test': neither an index below 2",
         setup=lambda w: task_file(w, docs=json.dumps({**GOOD_DOCS[0], "gold": 7}) + "\n")),
    Case("evaluate-task-data-not-json-lines", eval_tasks_argv,
         r"dataset_kwargs\.data_files\.test: .*task\.jsonl line 2 is not a JSON object",
         setup=lambda w: task_file(w, docs=json.dumps(GOOD_DOCS[0]) + "\nq,choices,gold\n")),
    Case("evaluate-task-data-file-missing", eval_tasks_argv,
         r"task\.yaml: dataset_kwargs\.data_files\.test: no such file: .*nope\.jsonl "
         r"\(give an existing data file",
         setup=lambda w: replace_in_task(w, "task.jsonl", "nope.jsonl")),
    Case("evaluate-task-data-file-empty", eval_tasks_argv, r"task\.jsonl holds no documents",
         setup=lambda w: task_file(w, docs="\n")),
    Case("evaluate-task-split-not-in-data", eval_tasks_argv,
         r"test_split: split 'validation' is not among dataset_kwargs\.data_files' \(test\)",
         setup=lambda w: replace_in_task(w, "test_split: test", "test_split: validation")),
    Case("evaluate-task-num-fewshot-larger-than-the-task", lambda w: eval_tasks_argv(
             w, "--num-fewshot", "5"),
         r"num_fewshot: 5 few-shot examples asked, but split 'test' has only 1 to draw from",
         setup=task_file),
    Case("evaluate-task-include-missing", eval_tasks_argv,
         r"task\.yaml: include: no such file .*base\.yaml",
         setup=lambda w: task_file(w, text="include: base.yaml\ntask: t\n")),
    Case("sweep-task-yaml-malformed", sweep_tasks_argv, r"task\.yaml: line 2: not valid YAML",
         setup=lambda w: task_file(w, text="task: [\n  oops")),
    Case("sweep-task-template-names-missing-field", sweep_tasks_argv,
         r"doc_to_text: 'question' is undefined",
         setup=lambda w: replace_in_task(w, "{{q}}", "{{question}}")),
    Case("sweep-task-num-fewshot-larger-than-the-task",
         lambda w: sweep_tasks_argv(w, "--num-fewshot", "9"), r"9 few-shot examples asked",
         setup=task_file),
    # --- issue 22: unclear or misfiled messages
    Case("languages-missing-corpus",
         lambda w: ["languages", "--corpus", w.root / "nope", "--model", "none"],
         r"corpus .*nope does not exist \(pass udhr or a folder", code=2),
    Case("languages-corpus-is-a-file",
         lambda w: ["languages", "--corpus", w.file, "--model", "none"],
         r"corpus .*file\.bin is a file, not a folder", code=2),
    Case("languages-out-is-a-folder",
         lambda w: ["languages", "--corpus", w.corpus, "--model", "none", "--out", w.empty],
         r"--out .*empty is a folder \(pass a file name ending in \.csv or \.json\)", code=3),
    Case("languages-model-absolute-path-missing",
         lambda w: ["languages", "--corpus", w.corpus, "--model", w.root / "abs" / "missing"],
         r"no such model folder: .*abs/missing", code=2),
    Case("model-architectures-file-is-a-folder",
         lambda w: split_argv(w, "--architectures", w.empty),
         r"architectures file .*empty is a folder"),
    Case("evaluate-task-file-is-a-folder",
         lambda w: ["evaluate", w.model, "--run", w.run, "--out", w.out, "--tasks",
                    w.root / "dir.yaml"],
         r"task file .*dir\.yaml is a folder", setup=lambda w: (w.root / "dir.yaml").mkdir()),
    # --- the disk
    Case("file-size-limit", lambda w: split_argv(w),
         r"file too large writing /\S+ \(the file size limit, ulimit -f",
         subprocess=lambda w: file_size_limit),
]  # fmt: skip


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Inputs made once: two tiny models, a corpus, a run folder, another partition."""
    model = tiny_checkpoint(tmp_path_factory)
    other_model = tiny_checkpoint(tmp_path_factory, seed=1)
    corpus = tiny_corpus(tmp_path_factory)
    run = tiny_run(tmp_path_factory)
    other_split = tmp_path_factory.mktemp("other-split")
    result = run_cli(["split", "--model", model, "--out", other_split, *SPLIT_ARGS, "--seed", "1"])
    assert result.code == 0, result.stderr
    return model, other_model, corpus, run, other_split


@pytest.fixture
def workspace(shared, tmp_path) -> Workspace:
    model, other_model, corpus, run, other_split = shared
    w = Workspace(
        root=tmp_path,
        model=model,
        other_model=other_model,
        corpus=tmp_path / "corpus",
        run=tmp_path / "run",
        other_split=other_split,
        empty=tmp_path / "empty",
        file=tmp_path / "file.bin",
    )
    shutil.copytree(corpus, w.corpus)
    shutil.copytree(run, w.run)
    w.empty.mkdir()
    w.file.write_bytes(bytes(range(256)))
    return w


def check_one_line(code: int, stderr: str, lines: list[str], match: str) -> None:
    assert code != 0
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    line = lines[0]
    assert line.startswith("babelmoe: error: "), line
    assert re.search(match, line), f"{match!r} not in {line!r}"
    assert FIX.search(line), f"no 'what to do' in {line!r}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_one_line_and_leaves_nothing(case: Case, workspace: Workspace):
    if case.setup is not None:
        case.setup(workspace)
    argv = case.argv(workspace)  # may build inputs too (before the snapshot)
    before = tree(workspace.root)
    if case.subprocess is not None:
        result = subprocess_cli(argv, preexec=case.subprocess(workspace))
    else:
        result = run_cli(argv)
    check_one_line(result.code, result.stderr, result.error_lines, case.match)
    if case.code is not None:
        assert result.code == case.code, result.stderr
    assert tree(workspace.root) == before, "the failed command left files behind"


@contextlib.contextmanager
def tiny_tmpfs(folder: Path, size: str = "64k", options: str = "rw"):
    """A tmpfs of ``size`` mounted on ``folder`` (skips the test where mounting is not allowed)."""
    folder.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},{options}", "tmpfs", str(folder)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root and mount permission)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_full_disk_gives_one_line_and_leaves_nothing(workspace: Workspace):
    """A tmpfs filled to the last byte: the split's write fails with ENOSPC."""
    with tiny_tmpfs(workspace.root / "disk") as disk:
        with contextlib.suppress(OSError), (disk / "filler").open("wb") as filler:
            while True:
                filler.write(b"\0" * 4096)
                filler.flush()
        before = tree(disk)
        result = run_cli(split_argv(workspace, "--out", disk / "run"))
        check_one_line(result.code, result.stderr, result.error_lines, r"no space left")
        assert result.code == 3
        assert tree(disk) == before


def test_read_only_folder_gives_one_line(workspace: Workspace):
    """A read-only file system (root ignores chmod, not a read-only mount)."""
    with tiny_tmpfs(workspace.root / "ro", options="ro") as disk:
        result = run_cli(split_argv(workspace, "--out", disk / "run"))
        check_one_line(
            result.code,
            result.stderr,
            result.error_lines,
            r"cannot write .*\(Read-only file system\)",
        )
        assert result.code == 3
        assert tree(disk) == {}


def test_the_catalogue_is_large_and_covers_every_subcommand(capsys):
    with capsys.disabled():
        print(f"\nbad-input catalogue: {len(CASES)} cases")
    assert len(CASES) >= 160
    assert len({case.id for case in CASES}) == len(CASES)
    from babelmoe.cli import COMMAND_MODULES

    commands = set(COMMAND_MODULES)
    assert commands <= {case.id.split("-")[0] for case in CASES}
