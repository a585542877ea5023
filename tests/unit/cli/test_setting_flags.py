"""The CLI names the settings of an error as the options that set them: every setting the
library marks (``errors.setting``) that a command takes maps to one of its options, and the
same error reads as the config field from Python and as the option from ``babelmoe``."""

from __future__ import annotations

import re

import pytest

from babelmoe.analysis.config import AnalysisConfig, StatisticsConfig
from babelmoe.cli import COMMAND_MODULES, _command
from babelmoe.commands.common import SETTING_FLAGS, flag
from babelmoe.errors import BabelmoeError
from tests.cli_helpers import REPO, run_cli

# Settings the library names but no command sets (library callers only): the CLI never meets
# an invalid one, and would print the field's name.
LIBRARY_ONLY = {
    "alpha",
    "ci_level",
    "kl_epsilon",
    "n_draws",
    "strata",
}


def _options() -> set[str]:
    return {
        opt
        for name in COMMAND_MODULES
        for param in _command(name).params
        for opt in getattr(param, "opts", ())
    }


def test_every_marked_setting_is_an_option_of_some_command() -> None:
    marked = set()
    for path in (REPO / "babelmoe").rglob("*.py"):
        marked |= set(re.findall(r"setting\(['\"](\w+)['\"]\)", path.read_text(encoding="utf-8")))
    options = _options()
    missing = sorted(s for s in marked - LIBRARY_ONLY if flag(s) not in options)
    assert missing == [], "add them to SETTING_FLAGS (or LIBRARY_ONLY)"
    assert set(SETTING_FLAGS.values()) <= options


def test_the_same_error_names_the_field_in_python_and_the_option_on_the_command_line(
    tmp_path,
) -> None:
    with pytest.raises(BabelmoeError) as caught:
        AnalysisConfig(statistics=StatisticsConfig(n_bootstrap=-1))
    assert str(caught.value).startswith("n_bootstrap must be >= 0, got -1")
    result = run_cli(["analyse", tmp_path, "--bootstrap", "-1"])  # refused before reading
    assert result.code == 2
    assert "babelmoe: error: --bootstrap must be >= 0, got -1 (use 0 to skip intervals)" in (
        result.stderr
    )
