"""The package layout the README describes: no import circles, runners only in ``stages/``; and
the tests mirror it: ``tests/unit/<package>/`` holds the tests of ``babelmoe/<package>/``."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import babelmoe

ROOT = Path(babelmoe.__file__).parent
LIBRARIES = ("experts", "profile", "analysis", "prune", "evaluate", "plots", "corpus", "models")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """module -> the babelmoe modules it imports (anywhere in the file, lazy imports too)."""
    modules = {_module(p) for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        here = _module(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            graph[here] |= {n for n in names if n in modules and n != here}
    return graph


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def test_no_subpackage_imports_another_that_imports_it_back():
    graph = _imports()
    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        packages[_package(module)] |= {_package(t) for t in targets} - {_package(module)}
    circles = sorted(
        {tuple(sorted((a, b))) for a in packages for b in packages[a] if a in packages[b]}
    )
    assert circles == []


def test_no_module_import_circle():
    graph = _imports()
    state: dict[str, int] = {}
    found: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert found == []


def test_libraries_never_import_stages_or_commands():
    graph = _imports()
    offenders = [
        (module, target)
        for module, targets in graph.items()
        if module.split(".")[1:2] and module.split(".")[1] in LIBRARIES
        for target in targets
        if target.startswith(("babelmoe.stages", "babelmoe.commands", "babelmoe.cli"))
    ]
    assert offenders == []


def test_every_command_has_its_stage_module():
    from babelmoe.cli import COMMAND_MODULES

    stages = {p.stem for p in (ROOT / "stages").glob("*.py")}
    assert set(COMMAND_MODULES) <= stages, set(COMMAND_MODULES) - stages
    runners = [p for p in ROOT.rglob("runner.py")] + list(ROOT.glob("pipeline.py"))
    assert runners == []


TESTS = Path(__file__).parent
# CLI-level tests (``babelmoe.cli`` and ``babelmoe.commands``, run in-process or as a process).
CLI_SIGNS = ("babelmoe.cli", "babelmoe.commands", "tests.cli_helpers", "subprocess")


def _imported(path: Path) -> set[str]:
    """Every module ``path`` imports (lazy imports too), relative ones marked by leading dots."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found |= {base, *(f"{base}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def test_unit_tests_mirror_the_package():
    """Each test file lives in the folder of the package it tests, and imports that package."""
    modules = {p.stem for p in ROOT.glob("*.py")}  # top-level modules: tests/unit/test_<module>.py
    misplaced = [
        p.name
        for p in TESTS.glob("test_*.py")
        if p.name != "test_layout.py" and p.stem.removeprefix("test_") not in modules
    ]
    assert misplaced == [], "move these into tests/unit/<package>/"
    wrong = []
    for path in sorted(TESTS.rglob("test_*.py")):
        if path.parent == TESTS:
            continue
        folder = path.relative_to(TESTS).parts[0]
        signs = CLI_SIGNS if folder == "cli" else (f"babelmoe.{folder}",)
        if folder != "cli" and not (ROOT / folder / "__init__.py").exists():
            wrong.append(f"{folder}/ mirrors no babelmoe package")
        imported = _imported(path)
        if not any(m == s or m.startswith(s + ".") for m in imported for s in signs):
            wrong.append(f"{path.relative_to(TESTS)} imports nothing of {signs[0]}")
        if not (path.parent / "__init__.py").exists():
            wrong.append(f"{path.parent.relative_to(TESTS)}/ lacks __init__.py")
    assert wrong == []


def test_no_test_imports_another_test_module():
    """Builders live in ``babelmoe.testing`` (or a ``conftest.py`` fixture), never in a test."""
    offenders = [
        (str(path.relative_to(TESTS)), module)
        for path in sorted(TESTS.parent.rglob("*.py"))
        for module in _imported(path)
        if module.rsplit(".", 1)[-1].startswith("test_")
        or module.lstrip(".").startswith("tests.unit")
    ]
    assert offenders == []
