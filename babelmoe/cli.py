"""The ``babelmoe`` program: one subcommand per stage, each defined in ``babelmoe/commands/``.

Every failure the user can fix is reported as one line on stderr with a non-zero exit:
``BabelmoeError`` (exit 2), usage errors from the option parser (exit 2), a full disk, a file size
limit, a folder that cannot be written or created (exit 3) and Ctrl-C (exit 130). Anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import logging
import sys
from pathlib import Path

import click
import typer

from babelmoe.commands import common
from babelmoe.errors import BabelmoeError

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
)

app = typer.Typer(
    name="babelmoe",
    help="Find and use the language-specific experts inside the FFN layers of decoder LLMs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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
    common.register_architectures(architectures)


for _name in COMMAND_MODULES:
    importlib.import_module(f"babelmoe.commands.{_name}").register(app)


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


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    interrupted = "interrupted; a re-run of the same command resumes or restarts cleanly"
    try:
        # Without standalone mode, typer returns (not raises) the code of an Exit; it turns
        # Ctrl-C into Exit(130) itself.
        code = app(args=argv, standalone_mode=False)
    except BabelmoeError as exc:
        _fail(exc.one_line(), 2)
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
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            _fail(
                f"no space left on the device writing {exc.filename or 'output'}; free space "
                "or choose another output folder",
                3,
            )
        if exc.errno == errno.EFBIG:
            _fail(
                f"file too large writing {exc.filename or 'output'} (the file size limit, "
                "ulimit -f, was reached); raise the limit or choose another output folder",
                3,
            )
        if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            _fail(
                f"cannot write {exc.filename or 'the output'} ({exc.strerror}); choose a folder "
                "you can write",
                3,
            )
        if exc.errno in (errno.ENOTDIR, errno.EEXIST) and exc.filename:
            _fail(
                f"cannot create {exc.filename}: a file is in the way; choose another output path",
                3,
            )
        raise
    if code == 130:
        _fail(interrupted, 130)
    if isinstance(code, int) and code != 0:
        sys.exit(code)


if __name__ == "__main__":
    main()
