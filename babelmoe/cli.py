"""The ``babelmoe`` program: one subcommand per stage, each defined in ``babelmoe/commands/``.

Every failure the user can fix is reported as one line on stderr with a non-zero exit:
``BabelmoeError`` (exit 2), usage errors from the option parser (exit 2), an empty argument (an
unset shell variable, exit 2), every problem with the place a run writes to (exit 3: a full disk,
a file size limit, a folder that cannot be written or created, a file in the way, any I/O error
of the libraries we write through) and Ctrl-C (exit 130). Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import typer
import typer.main
from typer.core import TyperGroup

try:  # typer >= 0.2x runs on its own copy of click: the real one need not load (~40 ms)
    from typer import _click as click
except ImportError:  # older typer: click itself
    import click

from babelmoe.commands import common
from babelmoe.errors import BabelmoeError, EveryRankError, first_sentence

# Subcommand modules, in the order ``--help`` lists them. Each defines ``register(app)``.
COMMAND_MODULES: tuple[str, ...] = (
    "run",
    "split",
    "profile",
    "analyse",
    "report",
    "diff",
    "prune",
    "evaluate",
    "sweep",
    "steer",
    "languages",
    "study",
)


class LazyCommands(TyperGroup):
    """The subcommands, each module imported only when its command runs (or ``--help`` lists
    them): ``babelmoe profile`` does not import the analysis, plotting and evaluation stacks,
    which cut its start-up from 8.3 s to about 5 s on a 2-core machine.

    A command module imports only typer and configs (``babelmoe.stages.config``,
    ``experts.config``, ``models.spec``, the method registry): torch, transformers, numpy and
    the plotting stack load when the command runs, so every ``--help`` is fast
    (``benchmarks/bench_help.py``; ``tests/unit/test_help.py`` checks the imports). Help is
    plain click formatting (``rich_markup_mode=None``): rich's formatter alone costs ~0.25 s."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _Commands()  # type: ignore[assignment]


class _Commands(Mapping):
    """``COMMAND_MODULES`` as click's name -> command mapping, importing on lookup (names and
    "did you mean" suggestions need no import)."""

    def __getitem__(self, name: str) -> click.Command:
        if name not in COMMAND_MODULES:
            raise KeyError(name)
        return _command(name)

    def __iter__(self) -> Iterator[str]:
        return iter(COMMAND_MODULES)

    def __len__(self) -> int:
        return len(COMMAND_MODULES)


@functools.cache
def _command(name: str) -> click.Command:
    """The click command of ``babelmoe.commands.<name>`` (its ``register`` adds one command)."""
    single = typer.Typer(
        add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None
    )
    importlib.import_module(f"babelmoe.commands.{name}").register(single)
    command = typer.main.get_command(single)
    command.epilog = keep_layout(command.epilog)
    return command


def keep_layout(text: str | None) -> str | None:
    """``text`` with every paragraph marked for click to print as written (an epilog's example
    commands are laid out by hand; click would re-flow them into one paragraph)."""
    if not text:
        return text
    paragraphs = [p.strip("\n") for p in text.strip("\n").split("\n\n")]
    return "\n\n".join(f"\b\n{p}" for p in paragraphs if p.strip())


# The top-level help's example (every subcommand's --help ends with its own).
EPILOG = """Example: the whole pipeline on the bundled model (Gemma 3 270M) and the paper's nine
languages, then open runs/demo/report.html in a browser:

  babelmoe run --out runs/demo

Each command's --help has its own examples (babelmoe profile --help)."""


app = typer.Typer(
    name="babelmoe",
    cls=LazyCommands,
    help="Find and use the language-specific experts inside the FFN layers of decoder LLMs.",
    epilog=keep_layout(EPILOG),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Log warnings and errors only."),
    architectures: Path | None = typer.Option(
        None, "--architectures", help=common.ARCHITECTURES_HELP
    ),
) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "accelerate", "datasets", "urllib3", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # the hub client logs each retry twice (its own handler and the root's); the last failure
    # reaches the user as one line, so its retries show only with --verbose
    logging.getLogger("huggingface_hub").setLevel(level if verbose else logging.ERROR)
    common.register_architectures(architectures)


def _parser_exceptions(name: str) -> tuple[type[BaseException], ...]:
    """The option parser's exception class ``name``: click's, and the copy in the click that
    newer typer versions vendor (``typer._click``), whichever exist."""
    modules = [click.exceptions]
    with contextlib.suppress(ImportError):
        from typer._click import exceptions as vendored

        modules.append(vendored)
    found = (getattr(module, name, None) for module in modules)
    return tuple(cls for cls in found if isinstance(cls, type))


NO_ARGS_ERRORS = _parser_exceptions("NoArgsIsHelpError")
USAGE_ERRORS = _parser_exceptions("UsageError")
ABORTS = (*_parser_exceptions("Abort"), typer.Abort)


def _fail(message: str, code: int) -> None:
    click.echo(f"babelmoe: error: {' '.join(message.split())}", err=True)
    sys.exit(code)


# Options whose value may be empty on purpose ('' for none); any other empty argument is almost
# always an unset shell variable (``--out "$RUN"``) and is refused rather than read as ".".
EMPTY_ALLOWED = ("--extra-seeds",)


def _flags(argv: list[str]) -> Callable[[str], str]:
    """``setting -> option`` for the errors of the subcommand ``argv`` runs (a setting it has
    no option for keeps its name)."""
    name = next((arg for arg in argv if arg in COMMAND_MODULES), None)
    if name is None:
        return common.flag_namer()
    options = [opt for param in _command(name).params for opt in getattr(param, "opts", ())]
    return common.flag_namer(options)


def _empty_argument(argv: list[str]) -> str | None:
    """The option (or 'an argument') given an empty value, if any."""
    for i, arg in enumerate(argv):
        if arg.startswith("--") and arg.endswith("=") and arg[:-1] not in EMPTY_ALLOWED:
            return arg[:-1]
        if arg == "":
            before = argv[i - 1] if i > 0 else ""
            if before in EMPTY_ALLOWED:
                continue
            return before if before.startswith("-") else "an argument"
    return None


def _os_error_line(exc: OSError) -> str:
    """One line for an I/O error from any writer (ours, safetensors, matplotlib, json, the
    lock): what failed, where, and what to do."""
    where = exc.filename or "the output"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"no space left on the device writing {where}; free space or choose another "
            "output folder"
        )
    if exc.errno == errno.EFBIG:
        return (
            f"file too large writing {where} (the file size limit, ulimit -f, was reached); "
            "raise the limit or choose another output folder"
        )
    if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return f"cannot write {where} ({exc.strerror}); choose a folder you can write"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR) and exc.filename:
        return f"cannot create {where}: a file is in the way; choose another output path"
    if exc.errno == errno.ENOENT and exc.filename:
        return (
            f"no such file or folder, and none can be created there: {where}; check the path "
            "(outputs go to a normal writable file system)"
        )
    reason = exc.strerror or first_sentence(exc) or exc.__class__.__name__
    return f"input/output error on {where} ({reason}); check the disk and the path, then re-run"


def _library_os_error(exc: BaseException) -> OSError | None:
    """The ``OSError`` behind a library's I/O exception (safetensors reports "... (os error
    27)"), or None."""
    if isinstance(exc, OSError):
        return exc
    found = re.search(r"os error (\d+)", str(exc))
    if found is None:
        return None
    code = int(found.group(1))
    return OSError(code, os.strerror(code), getattr(exc, "filename", None))


class Terminated(BaseException):
    """SIGTERM (``kill``, a scheduler's time limit): ended like Ctrl-C, with a line."""


@contextlib.contextmanager
def _sigterm_as_exception() -> Iterator[None]:
    """Turn SIGTERM into ``Terminated`` in the main thread (writers' ``finally`` blocks and
    atomic writes then clean up as for Ctrl-C); the previous handler is put back."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    interrupted = "interrupted; a re-run of the same command resumes or restarts cleanly"
    argv = list(sys.argv[1:] if argv is None else argv)
    empty = _empty_argument(argv)
    if empty is not None:
        _fail(f"empty value for {empty} (an unset shell variable?); pass a non-empty value", 2)
    with _sigterm_as_exception():
        _main(argv, interrupted)


def _main(argv: list[str], interrupted: str) -> None:
    try:
        # Without standalone mode, typer returns (not raises) the code of an Exit; it turns
        # Ctrl-C into Exit(130) itself.
        code = app(args=argv, prog_name="babelmoe", standalone_mode=False)
    except EveryRankError as exc:  # the same on every rank of a torchrun job: said once
        if os.environ.get("RANK", "0") != "0":
            sys.exit(exc.exit_code)
        _fail(exc.one_line(_flags(argv)), exc.exit_code)
    except BabelmoeError as exc:  # the settings it names, as the command's options
        _fail(exc.one_line(_flags(argv)), exc.exit_code)
    except NO_ARGS_ERRORS as exc:  # `babelmoe` alone: the help
        click.echo(exc.format_message())  # type: ignore[attr-defined]
        sys.exit(0)
    except USAGE_ERRORS as exc:
        ctx = exc.ctx  # type: ignore[attr-defined]
        where = f"babelmoe {ctx.info_name} --help" if ctx else "babelmoe --help"
        if ctx and ctx.parent is None:
            where = "babelmoe --help"
        _fail(f"{exc.format_message()} (see {where})", 2)  # type: ignore[attr-defined]
    except ABORTS:
        _fail("interrupted", 130)
    except KeyboardInterrupt:
        _fail(interrupted, 130)
    except Terminated:
        _fail(f"terminated (SIGTERM); {interrupted.split('; ', 1)[1]}", 143)
    except OverflowError as exc:  # a number beyond what a library takes (a seed of 20 digits)
        _fail(f"a number is out of range ({first_sentence(exc)}); pass a smaller value", 2)
    except Exception as exc:
        os_error = _library_os_error(exc)
        if os_error is None:
            raise
        _fail(_os_error_line(os_error), 3)
    if code == 130:
        _fail(interrupted, 130)
    if isinstance(code, int) and code != 0:
        sys.exit(code)


if __name__ == "__main__":
    main()
