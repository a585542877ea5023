"""``--help`` stays light: no command's help imports the heavy stacks (torch, transformers,
numpy, scipy, matplotlib), and every help shows an example. An import check, not a timing (the
timing is ``benchmarks/bench_help.py``)."""

from __future__ import annotations

import json
import subprocess
import sys

from babelmoe.cli import COMMAND_MODULES
from tests.cli_helpers import REPO

HEAVY = ("torch", "transformers", "numpy", "scipy", "matplotlib", "pandas", "safetensors")

# In a fresh interpreter: every command's --help (and the top-level one), then what got imported.
_PROBE = """
import contextlib, io, json, sys
from babelmoe.cli import main
texts = {}
for argv in [[]] + [[name] for name in json.loads(sys.argv[1])]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main(argv + ["--help"])
        except SystemExit:
            pass
    texts[" ".join(argv)] = out.getvalue()
heavy = [m for m in json.loads(sys.argv[2]) if m in sys.modules]
print(json.dumps({"texts": texts, "heavy": heavy}))
"""


def test_help_imports_nothing_heavy_and_shows_examples() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(COMMAND_MODULES), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=True,
    )
    found = json.loads(proc.stdout)
    assert found["heavy"] == [], f"--help imported {found['heavy']}"
    texts = found["texts"]
    assert set(texts) == {"", *COMMAND_MODULES}
    assert "babelmoe run --out runs/demo" in texts[""]  # the top-level example
    for name in COMMAND_MODULES:
        assert f"Usage: babelmoe {name}" in texts[name]
        assert f"babelmoe {name} " in texts[name].split("Options:")[-1], f"{name}: no example"
