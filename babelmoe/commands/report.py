"""``babelmoe report``: one self-contained HTML file with the findings, figures and tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EPILOG = """Examples:

  babelmoe report runs/gemma3

  babelmoe report runs/gemma3 --out /tmp/gemma3-report.html

Needs `babelmoe analyse RUN_DIR` first. Sections from RUN_DIR/*/report_section.json (written by
later stages, e.g. `babelmoe diff ... --out RUN_DIR/diff_vs_base`) are included.
"""


def report(
    run_dir: Annotated[Path, typer.Argument(help="Run folder analysed by `babelmoe analyse`.")],
    out: Annotated[
        Path | None, typer.Option(help="Output file (default RUN_DIR/report.html).")
    ] = None,
) -> None:
    """Write RUN_DIR/report.html: findings with p-values and intervals, figures, configuration."""
    from babelmoe.stages.report import build_report

    typer.echo(f"wrote {build_report(run_dir, out=out)}")


def register(app: typer.Typer) -> None:
    """Add ``report`` to the program."""
    app.command("report", epilog=EPILOG)(report)
