"""How long ``babelmoe --help`` and every subcommand's ``--help`` take: wall clock of a fresh
process (``python -m babelmoe.cli ... --help``, what a user's shell pays), several repeats, the
median, against ``python -c pass`` timed in the same run (the interpreter's own start-up on this
machine at this moment). Issue 26's target: each help under 0.5 s.

Repeats are interleaved (every command once per round) so that a busy spell of a shared machine
hits all of them alike. Nothing heavy is imported for help (``tests/unit/cli/test_help.py``).
``--baseline DIR`` also times the same commands from another checkout (an older commit, e.g.
``git archive COMMIT | tar -x -C DIR``) in the same rounds.

  python benchmarks/bench_help.py --repeats 7
  python benchmarks/bench_help.py --repeats 5 --baseline /tmp/babelmoe-old
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from babelmoe.cli import COMMAND_MODULES  # noqa: E402  (light: imports no command)


def wall(argv: list[str], repo: Path = REPO) -> float:
    """Seconds from start to exit of ``argv`` run with ``repo``'s babelmoe (output discarded; a
    failure stops the benchmark)."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True, cwd=repo, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="Runs of each command.")
    parser.add_argument("--baseline", type=Path, help="Another checkout to time alongside.")
    args = parser.parse_args()
    helps = {"babelmoe --help": [sys.executable, "-m", "babelmoe.cli", "--help"]}
    for name in COMMAND_MODULES:
        helps[f"babelmoe {name} --help"] = [sys.executable, "-m", "babelmoe.cli", name, "--help"]
    cases: dict[str, tuple[list[str], Path]] = {
        "python -c pass": ([sys.executable, "-c", "pass"], REPO)
    }
    cases.update({label: (argv, REPO) for label, argv in helps.items()})
    if args.baseline is not None:
        cases.update(
            {f"{label} [baseline]": (argv, args.baseline) for label, argv in helps.items()}
        )
    for argv, repo in cases.values():  # warm the file cache once
        wall(argv, repo)
    times: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(args.repeats):
        for label, (argv, repo) in cases.items():
            times[label].append(wall(argv, repo))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, "
        f"load average {load:.1f} at the end; median of {args.repeats} runs, seconds"
    )
    reference = statistics.median(times["python -c pass"])
    print(f"{'command':<39} {'median':>7} {'min':>6} {'max':>6} {'minus python':>13}")
    for label, values in times.items():
        median = statistics.median(values)
        print(
            f"{label:<39} {median:7.3f} {min(values):6.3f} {max(values):6.3f} "
            f"{median - reference:13.3f}"
        )
    ours = [statistics.median(v) for label, v in times.items() if label.endswith("--help")]
    print(f"slowest help: {max(ours):.3f} s (target < 0.5 s)")


if __name__ == "__main__":
    main()
