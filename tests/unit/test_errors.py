"""An error names a setting by its config field for a library caller and by its option on the
command line (``errors.setting``, ``commands.common.flag_namer``)."""

from __future__ import annotations

import pytest

from babelmoe.commands.common import flag, flag_namer
from babelmoe.errors import BabelmoeError, check_seed, setting


def test_a_setting_reads_as_its_field_in_python_and_as_its_option_on_the_command_line() -> None:
    exc = BabelmoeError(
        f"{setting('max_documents')} must be >= 1, got 0",
        f"omit {setting('max_documents')} for all, or use {setting('n_bootstrap')}",
    )
    assert (
        str(exc)
        == "max_documents must be >= 1, got 0 (omit max_documents for all, or use n_bootstrap)"
    )
    assert exc.problem == "max_documents must be >= 1, got 0"
    assert exc.settings == ("max_documents", "n_bootstrap")
    assert exc.one_line() == str(exc)
    assert exc.one_line(flag) == (
        "--max-documents must be >= 1, got 0 (omit --max-documents for all, or use --bootstrap)"
    )


def test_only_marked_words_become_options() -> None:
    exc = BabelmoeError(f"{setting('limit')} applies to tasks", f"add {setting('tasks')}")
    assert exc.one_line(flag) == "--limit applies to tasks (add --tasks)"


def test_a_setting_the_command_has_no_option_for_keeps_its_name() -> None:
    name = flag_namer(["--bootstrap", "--seed"])
    assert name("n_bootstrap") == "--bootstrap" and name("ci_level") == "ci_level"
    assert flag_namer()("ci_level") == "--ci-level"
    assert flag("--random-seeds") == "--random-seeds"  # an option passed as the name


def test_check_seed_names_the_setting_it_checks() -> None:
    with pytest.raises(BabelmoeError, match=r"^extra_seeds must be in \[0, ") as caught:
        check_seed(-1, "extra_seeds")
    assert caught.value.one_line(flag).startswith("--extra-seeds must be in [0, ")
