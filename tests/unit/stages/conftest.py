"""Fixtures of the stage tests (builders: ``babelmoe.testing``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from babelmoe.testing import make_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(run folder, model folder) of ``make_run``, once per test module (a module may define
    its own ``run``)."""
    run_dir, model_dir, _ = make_run(tmp_path_factory.mktemp("run"))
    return run_dir, model_dir
