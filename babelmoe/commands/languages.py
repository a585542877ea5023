"""``babelmoe languages``: what a corpus offers, to pick a study's languages from."""

from __future__ import annotations

from pathlib import Path

import typer

from babelmoe.commands import common
from babelmoe.stages.config import LanguagesConfig

EPILOG = """Examples:

  babelmoe languages                                  # every UDHR version
  babelmoe languages --family Turkic
  babelmoe languages --script Cyrl --min-tokens 1500
  babelmoe languages --script Han                     # Japanese too: 47% of its letters
  babelmoe languages --defaults --out udhr.csv        # one version per language, as CSV

Columns: request (what --languages takes; "(alt)": a version a bare
code does not pick), ISO 639-3 code, name, Glottolog family and genus,
scripts with their shares of the letters, tokens of the profiled
documents under the model's tokenizer (held-out ones excluded), documents.

The catalogue is cached in ~/.cache/babelmoe/catalogue (--refresh rebuilds).
"""


def languages(
    corpus: str = typer.Option(
        common.config_default(LanguagesConfig, "corpus"),
        "--corpus",
        help="udhr or a folder of <lang>.txt/.jsonl.",
    ),
    family: str | None = typer.Option(
        None, "--family", help="A Glottolog family, genus or lineage node (Indo-European, Bantu)."
    ),
    script: str | None = typer.Option(
        None, "--script", help="An ISO 15924 code or Unicode script name (Cyrl, Han, Arabic)."
    ),
    min_tokens: int | None = typer.Option(
        None, "--min-tokens", help="At least this many profiled tokens under the tokenizer."
    ),
    min_share: float = typer.Option(
        common.config_default(LanguagesConfig, "min_script_share"),
        "--min-share",
        help="--script keeps versions with at least this share of letters.",
    ),
    defaults: bool = typer.Option(
        common.config_default(LanguagesConfig, "defaults_only"),
        "--defaults",
        help="Only the version a bare language code picks.",
    ),
    model: str = typer.Option(
        common.config_default(LanguagesConfig, "model"),
        "--model",
        "-m",
        help="Whose tokenizer counts tokens ('none': no counts).",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the rows (.csv/.json)."),
    refresh: bool = typer.Option(
        common.config_default(LanguagesConfig, "refresh"),
        "--refresh",
        help="Rebuild the cached catalogue.",
    ),
) -> None:
    """List the languages a corpus offers, with family, scripts and token counts."""
    from babelmoe.errors import OutputError
    from babelmoe.stages.languages import format_table, list_languages, write_rows

    if out is not None and out.expanduser().is_dir():
        raise OutputError(f"--out {out} is a folder", "pass a file name ending in .csv or .json")

    config = LanguagesConfig(
        corpus=corpus,
        model=None if model.lower() == "none" else model,
        family=family,
        script=script,
        min_tokens=min_tokens,
        min_script_share=min_share,
        defaults_only=defaults,
        refresh=refresh,
    )
    rows = list_languages(config)
    typer.echo(format_table(rows))
    families = {r.family for r in rows if r.family}
    scripts = {r.script_code for r in rows if r.script_code}
    typer.echo(f"{len(rows)} versions, {len(families)} families, {len(scripts)} scripts")
    if out is not None:
        typer.echo(f"rows written to {write_rows(rows, out)}")


def register(app: typer.Typer) -> None:
    app.command(epilog=EPILOG)(languages)
