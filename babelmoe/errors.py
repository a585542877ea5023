"""The one exception type users see: a message that says what is wrong and what to do.

The CLI turns a ``BabelmoeError`` into a single line on stderr and a non-zero exit; library
callers can catch it like any exception. Everything else that escapes is a bug.

A message names a setting by its config field, marked with :func:`setting`
(``f"{setting('max_documents')} must be >= 1"``): a caller of the library reads the field it
passes (``max_documents must be >= 1``), the command line the option that sets it
(``--max-documents must be >= 1``; ``BabelmoeError.one_line`` with
``commands.common.flag``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable

_MARK = "\x1f"  # brackets a setting's name inside a message (never shown)
_MARKED = re.compile(f"{_MARK}([^{_MARK}]+){_MARK}")


def setting(name: str) -> str:
    """``name`` (a config field) marked as a setting in a ``BabelmoeError``'s message: shown
    as the name to a library caller, as its option on the command line."""
    return f"{_MARK}{name}{_MARK}"


def _render(text: str, flag: Callable[[str], str] | None) -> str:
    return _MARKED.sub(lambda m: flag(m.group(1)) if flag else m.group(1), text)


class BabelmoeError(Exception):
    """A problem with the user's input or environment, with the fix in the message.

    Args:
        problem: what is wrong, e.g. ``"no such file: model.gguf"``.
        fix: what to do about it, e.g. ``"pass an existing .gguf path"``.

    Settings named in either are marked with :func:`setting`; ``settings`` lists them.
    """

    exit_code = 2  # what the CLI exits with (OutputError: 3, like a full disk)

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self._marked = f"{problem} ({fix})" if fix else problem
        self.problem = _render(problem, None)
        self.fix = None if fix is None else _render(fix, None)
        self.settings = tuple(dict.fromkeys(_MARKED.findall(self._marked)))
        super().__init__(_render(self._marked, None))

    def one_line(self, flag: Callable[[str], str] | None = None) -> str:
        """The message on a single line; with ``flag`` (a setting's name -> its command-line
        option) the settings are named as options, as the CLI prints them."""
        return " ".join(_render(self._marked, flag).split())


class OutputError(BabelmoeError):
    """The output cannot be written where asked (a file in the way, a folder that cannot be
    made): exit 3, the code of every problem with the place a run writes to."""

    exit_code = 3


class EveryRankError(BabelmoeError):
    """A problem every rank of a ``torchrun`` job finds alike (a bad setting in the shared
    environment): only rank 0 prints it, so the user reads it once, not once per process."""


MAX_SEED = 2**32 - 1


def check_seed(value: int, name: str = "seed") -> int:
    """A seed every random generator we use accepts (numpy and torch): 0 .. 2**32 - 1;
    ``name``: the setting (or option) it came from."""
    if not 0 <= value <= MAX_SEED:
        raise BabelmoeError(
            f"{setting(name)} must be in [0, {MAX_SEED}], got {value}", "pass e.g. 0"
        )
    return value


def first_sentence(message: object, limit: int = 200) -> str:
    """A library's message cut to its first line and first sentence (at most ``limit`` chars)."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    end = text.find(". ")
    if end > 0:
        text = text[: end + 1]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def require(condition: bool, problem: str, fix: str | None = None) -> None:
    """Raise ``BabelmoeError(problem, fix)`` unless ``condition`` holds."""
    if not condition:
        raise BabelmoeError(problem, fix)


def closest(name: str, choices: Iterable[str], ignore_case: bool = False) -> str | None:
    """The choice closest to ``name`` (for "did you mean"), or None when none is close."""
    if ignore_case:
        by_lower = {choice.lower(): choice for choice in choices}
        close = difflib.get_close_matches(name.strip().lower(), by_lower, n=1)
        return by_lower[close[0]] if close else None
    close = difflib.get_close_matches(name, list(choices), n=1)
    return close[0] if close else None


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> BabelmoeError:
    """The error for an unknown registry entry, with "did you mean" when one is close."""
    names = list(choices)
    close = closest(name, names)
    hint = f"did you mean {close!r}? " if close else ""
    return BabelmoeError(f"unknown {kind} {name!r}", f"{hint}use one of {', '.join(names)}")
