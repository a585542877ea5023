"""The one exception type users see: a message that says what is wrong and what to do.

The CLI turns a ``BabelmoeError`` into a single line on stderr and a non-zero exit; library
callers can catch it like any exception. Everything else that escapes is a bug.
"""

from __future__ import annotations


class BabelmoeError(Exception):
    """A problem with the user's input or environment, with the fix in the message.

    Args:
        problem: what is wrong, e.g. ``"no such file: model.gguf"``.
        fix: what to do about it, e.g. ``"pass an existing .gguf path"``.
    """

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} ({fix})" if fix else problem)

    def one_line(self) -> str:
        """The message on a single line, as the CLI prints it."""
        return " ".join(str(self).split())


def require(condition: bool, problem: str, fix: str | None = None) -> None:
    """Raise ``BabelmoeError(problem, fix)`` unless ``condition`` holds."""
    if not condition:
        raise BabelmoeError(problem, fix)
