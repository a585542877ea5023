"""Running the ``babelmoe`` command line from tests: in-process, in a forked child, or as a
subprocess; and the small inputs it runs on (tiny checkpoint, corpus folder, run folder), built
once per session from the builders of ``babelmoe.testing``.

In-process runs (:func:`run_cli`) cost milliseconds once the test process has imported babelmoe;
a forked child (:func:`fork_cli`) costs no imports either and can be killed with SIGKILL; a
subprocess (:func:`subprocess_cli`) pays the ~8 s of imports and is for what needs a fresh
process (resource limits).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from babelmoe import testing

REPO = Path(__file__).resolve().parents[1]

# Progress bars (tqdm) redraw with carriage returns, and ``babelmoe run`` announces each stage
# ("[2/10] split (0:01 elapsed, ...)"); neither is part of the error report.
_PROGRESS = re.compile(r"\d+%\||it/s\]|s/it\]|\d+/\d+ \[|^\[\d+/\d+\] ")


@dataclass
class CliResult:
    """Exit code and the text a run printed."""

    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        """Non-empty stderr lines, progress-bar redraws removed."""
        lines = []
        for line in self.stderr.replace("\r", "\n").split("\n"):
            if line.strip() and not _PROGRESS.search(line):
                lines.append(line)
        return lines


def run_cli(argv: Sequence[str]) -> CliResult:
    """``babelmoe ARGV`` in this process; returns its exit code and output."""
    from babelmoe.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return CliResult(code, out.getvalue(), err.getvalue())


def subprocess_cli(
    argv: Sequence[str],
    preexec: Callable[[], None] | None = None,
    timeout: float = 300,
) -> CliResult:
    """``babelmoe ARGV`` as a fresh Python process (``preexec`` runs in the child first)."""
    proc = subprocess.run(
        [sys.executable, "-m", "babelmoe.cli", *map(str, argv)],
        capture_output=True,
        text=True,
        cwd=REPO,
        preexec_fn=preexec,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


KillPoint = tuple[str, int, str]  # (suffix of the destination, occurrence, "before"/"after")


def _child(argv: list[str], log: str, kill_at: KillPoint | None) -> None:
    import logging

    import torch

    # The parent's OpenMP/MKL thread pool does not survive fork (a GEMM would wait forever for
    # its workers); one thread never touches it.
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"  # and babelmoe keeps it so when it loads a model
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = sys.stderr = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger("babelmoe").addHandler(handler)
    logging.getLogger("babelmoe").setLevel(logging.INFO)
    if kill_at is not None:
        _die_at_replace(*kill_at)
    code = 0
    try:
        from babelmoe.cli import main

        main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    os._exit(code)


def _die_at_replace(suffix: str, occurrence: int, when: str) -> None:
    """Make this process SIGKILL itself at the ``occurrence``-th ``os.replace`` onto a path
    ending in ``suffix``, just ``before`` or ``after`` the rename: a crash at an exact point of
    an atomic write."""
    real = os.replace
    seen = 0

    def replace(src, dst, *args, **kwargs):
        nonlocal seen
        hit = str(dst).endswith(suffix) and (seen := seen + 1) == occurrence
        if hit and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = real(src, dst, *args, **kwargs)
        if hit and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    os.replace = replace


def fork_cli(
    argv: Sequence[str], log: Path, kill_at: KillPoint | None = None
) -> multiprocessing.process.BaseProcess:
    """Start ``babelmoe ARGV`` in a forked child (no imports to pay); its output goes to ``log``.

    ``kill_at`` makes the child SIGKILL itself at an exact point of a write (see
    ``_die_at_replace``); the parent can also ``child.kill()`` it at any moment.
    """
    context = multiprocessing.get_context("fork")
    child = context.Process(
        target=_child, args=([str(a) for a in argv], str(log), kill_at), daemon=True
    )
    child.start()
    return child


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> sha256 of its bytes); folders end in '/'."""
    if not folder.exists():
        return {}
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_dir():
            found[rel + "/"] = ""
        elif path.is_file():
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[rel] = "special"
    return found


def temp_files(folder: Path) -> list[Path]:
    """Temporary files of the atomic writes (``.<name>.*.tmp``) anywhere under ``folder``."""
    return sorted(p for p in folder.rglob(".*.tmp"))


_BUILT: dict[str, Path] = {}


def built(name: str, factory, build: Callable[[Path], object]) -> Path:
    """A folder made once per test session by ``build(folder)`` (``factory``:
    pytest's ``tmp_path_factory``); shared by every test file that asks for ``name``."""
    if name not in _BUILT:
        folder = factory.mktemp(name)
        build(folder)
        _BUILT[name] = folder
    return _BUILT[name]


def tiny_checkpoint(factory, seed: int = 0, model_type: str = "llama") -> Path:
    """A tiny random model + byte tokenizer that ``--model FOLDER`` loads (made once)."""

    def build(folder: Path) -> None:
        testing.save_tiny_checkpoint(str(folder / model_type), model_type, seed=seed)

    return built(f"ckpt-{model_type}-{seed}", factory, build) / model_type


def tiny_corpus(factory) -> Path:
    """An en + fr corpus folder (10 documents of 30 words each; made once)."""
    return built("corpus", factory, testing.write_word_corpus)


SPLIT_ARGS = ("--experts", "4", "--max-iter", "5", "--device", "cpu")
PROFILE_ARGS = ("--languages", "en,fr", "--budget", "400", "--units", "4", "--batch-size", "4")


def tiny_run(factory, seed: int = 0) -> Path:
    """A run folder with a partition (4 experts) and a profile of the tiny model (made once;
    copy it before changing it)."""
    model, corpus = tiny_checkpoint(factory, seed), tiny_corpus(factory)

    def build(folder: Path) -> None:
        for argv in (
            ["split", "--model", model, "--out", folder, *SPLIT_ARGS],
            ["profile", folder, "--model", model, "--corpus", corpus, *PROFILE_ARGS],
        ):
            result = run_cli(argv)
            assert result.code == 0, result.stderr

    return built(f"run-{seed}", factory, build)


def torchrun(
    module: str, argv: Sequence, env: dict | None = None, nproc: int = 2
) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --standalone`` of ``module`` with ``nproc`` ranks (one
    thread each); a hang fails at the 300 s timeout, not at CI's limit."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(nproc),
            "-m",
            module,
            *map(str, argv),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


def copy_partition(source: Path, target: Path) -> Path:
    """A new run folder ``target`` holding ``source``'s partition only."""
    target.mkdir()
    for name in ("partition.safetensors", "partition.json"):
        shutil.copy(source / name, target / name)
    return target


def run_benchmark(script: str, work: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``benchmarks/<script>`` at a tiny shape on the CPU (as its smoke tests do), with its
    work folder and JSON report under ``work``; returns the process and the report (empty when
    the script failed, so that the caller's assertion shows the output)."""
    out = work / "bench.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), "--device", "cpu",
         "--shape", "tiny-llama", *args, "--work", str(work / "work"), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=900,
    )  # fmt: skip
    report = json.loads(out.read_text()) if result.returncode == 0 and out.is_file() else {}
    return result, report
