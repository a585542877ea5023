"""A stage or config called from Python names the setting (the config field), never a
command-line option (those are the CLI's: ``tests/unit/cli/test_setting_flags.py``)."""

from __future__ import annotations

import pytest

from babelmoe.errors import BabelmoeError
from babelmoe.prune.sweep import SweepConfig
from babelmoe.stages.config import EvaluateConfig, ProfileConfig
from babelmoe.stages.heldout import heldout_documents
from babelmoe.testing import make_profile


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: EvaluateConfig(max_documents=0), "max_documents must be >= 1, got 0"),
        (
            lambda: EvaluateConfig(num_fewshot=2),
            "num_fewshot applies to tasks, and no tasks was given (add tasks or drop num_fewshot)",
        ),
        (lambda: ProfileConfig(languages=["en"], n_units=0), "n_units must be >= 1, got 0"),
        (
            lambda: SweepConfig(methods=("sort",), specificity_method="norm"),
            "specificity_method norm is not among methods",
        ),
    ],
)
def test_a_config_names_the_field(build, message: str) -> None:
    with pytest.raises(BabelmoeError) as caught:
        build()
    assert message in str(caught.value) and "--" not in str(caught.value)


def test_a_stage_called_from_python_names_the_setting() -> None:
    profile = make_profile(n_layers=2, n_experts=4)
    profile.meta["config"] = {"corpus": "udhr", "languages": profile.codes, "heldout_frac": 0.0}
    with pytest.raises(BabelmoeError) as caught:
        heldout_documents(profile)
    text = str(caught.value)
    assert "(heldout_frac 0)" in text and "--" not in text
    assert caught.value.settings == ("heldout_frac",)
