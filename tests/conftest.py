"""Shared fixtures. Unit tests build tiny random models offline; integration tests use the real
bundled model (Gemma 3 270M) and the UDHR corpus and are marked ``integration``."""

from __future__ import annotations

import os

import pytest
import torch

# Integration tests share one cache for the converted default model and the UDHR corpus.
os.environ.setdefault("BABELMOE_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "babelmoe"))
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def default_model():
    """The real bundled model, loaded once per session (float32, CPU)."""
    from babelmoe.models.loading import ModelSpec, load_model

    return load_model(ModelSpec(device="cpu", dtype="float32"))


@pytest.fixture(autouse=True)
def _architecture_table_restored():
    """``--architectures`` registers into a process-wide table: every test starts and ends with
    the shipped one (an in-process CLI run must not leak a user's entry into the next test)."""
    from babelmoe.models import architectures

    table, users = dict(architectures.ARCHITECTURES), set(architectures.USER_REGISTERED)
    yield
    architectures.ARCHITECTURES.clear()
    architectures.ARCHITECTURES.update(table)
    architectures.USER_REGISTERED.clear()
    architectures.USER_REGISTERED.update(users)
