"""The self-contained HTML report of a run folder, and the hook other stages use to add to it.

``build_report(run_dir)`` writes ``RUN_DIR/report.html``: one file with inline CSS, every figure
embedded (PNG as base64 data URIs, SVG inline), the tables, the headline findings as sentences and
the run's configuration. It opens offline; nothing is fetched. It needs ``babelmoe analyse``
to have written ``RUN_DIR/analysis/`` (summary.json, figures.json and the tables).

Section hook (for later stages, e.g. prune/sweep): any ``RUN_DIR/<folder>/report_section.json``
becomes a section of the report, after the analysis sections and before the configuration. The
page shows a section figures first, the statistics one click away (``plots.html``)::

    {"title": "Pruning sweep",                 # section heading (required)
     "lead": "Pruning for a language hurts it least in 7 of 9 languages.",
                                               # one plain sentence with the number (text)
     "figures": [{"path": "sweep/curve.png",   # each caption: first a plain sentence with
                  "caption": "..."},           # the figure's number, then how to read it
                 "sweep/other.svg"],
     "html": "<p>...</p>",                     # a short paragraph (trusted HTML, as is)
     "details": [{"summary": "Statistics",     # collapsed blocks: summary text, trusted HTML
                  "html": "<p>...</p>",        # and/or tables (below)
                  "tables": [...]}],
     "tables": [{"path": "curves.csv", "title": "...", "max_rows": 50}],
                                               # tables longer than 12 rows collapse by themselves
     "order": 50,                              # sections sort by (order, folder); default 100
     "schema_version": 1}                      # optional; when present it must match

Everything but ``title`` is optional. A section without ``lead`` or ``details`` whose ``html``
is long (over ``LONG_HTML`` characters) shows it and its tables collapsed under "Details", after
its figures.

A path is looked up relative to the folder holding the JSON, then relative to the run folder.
.png/.jpg are embedded as data URIs, .svg inline (a PNG listed with its SVG twin is embedded once);
tables may be CSV files or JSON tables written by ``analysis.tables.write_table``. A section file
that cannot be read is shown as a note in the page (and logged), not fatal.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

from babelmoe import artifacts
from babelmoe.analysis.io import read_json
from babelmoe.artifacts import REPORT_FILE, SCHEMA_VERSION, atomic_write_text
from babelmoe.errors import BabelmoeError
from babelmoe.plots.html import Section, esc, render_document, table_html

logger = logging.getLogger(__name__)

# What the report reads from analysis/summary.json (checked before anything is drawn).
SUMMARY_FIELDS = ("languages", "n_layers", "n_experts", "primary_metric", "findings")

SECTION_FILE = artifacts.SECTION_FILE
LONG_HTML = 600  # characters of a legacy section's html shown open; longer ones collapse


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".json":
        return read_json(path)["rows"]
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _hook_figures(items: list[Any], base: Path, run_dir: Path) -> list[tuple[Path, str]]:
    """Resolve figure entries; a PNG listed beside its SVG twin is embedded once (as PNG)."""
    entries = []
    for item in items:
        item = {"path": item} if isinstance(item, str) else item
        path = base / item["path"]
        if not path.is_file() and (run_dir / item["path"]).is_file():
            path = run_dir / item["path"]
        entries.append((path, str(item.get("caption", ""))))
    pngs = {p.with_suffix("") for p, _ in entries if p.suffix.lower() == ".png"}
    return [
        (p, c) for p, c in entries if p.suffix.lower() != ".svg" or p.with_suffix("") not in pngs
    ]


def load_hook_sections(run_dir: Path) -> list[Section]:
    """Sections from every ``RUN_DIR/*/report_section.json`` (see the module docstring)."""
    sections = []
    for path in sorted(Path(run_dir).glob(f"*/{SECTION_FILE}")):
        base = path.parent
        try:
            spec = json.loads(path.read_text(encoding="utf-8"))
            version = spec.get("schema_version", SCHEMA_VERSION)
            if version != SCHEMA_VERSION:
                raise ValueError(f"schema version {version}, this babelmoe reads {SCHEMA_VERSION}")
            figures = _hook_figures(spec.get("figures", []), base, Path(run_dir))

            def tables(entries: list[dict[str, Any]], base: Path = base) -> str:
                return "".join(
                    table_html(
                        _read_rows(base / t["path"]),
                        t.get("title", t["path"]),
                        int(t.get("max_rows", 60)),
                        f"{base.name}/{t['path']}",
                    )
                    for t in entries
                )

            html_part = str(spec.get("html", ""))
            details = [
                (
                    str(d.get("summary", "Details")),
                    str(d.get("html", "")) + tables(d.get("tables", [])),
                )
                for d in spec.get("details", [])
            ]
            lead = str(spec.get("lead", ""))
            if not lead and not details and len(html_part) > LONG_HTML:
                details = [("Details", html_part + tables(spec.get("tables", [])))]
                html_part = ""
            else:
                html_part += tables(spec.get("tables", []))
            order = float(spec.get("order", 100))
            sections.append(
                Section(str(spec["title"]), html_part, figures, order, lead=lead, details=details)
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError, BabelmoeError) as exc:
            logger.warning("report section %s skipped: %s", path, exc)
            note = f"<p class='note'>{esc(path.name)}: {esc(exc)}</p>"
            sections.append(Section(f"{base.name} (unreadable section)", note, [], 900))
    return sections


def build_report(run_dir: Path, *, out: Path | None = None) -> Path:
    """Write the report of ``run_dir`` (default ``RUN_DIR/report.html``); returns its path."""
    from babelmoe.plots.sections import analysis_sections, config_section

    run_dir = Path(run_dir)
    if not (run_dir / artifacts.ANALYSIS_DIR / artifacts.SUMMARY_FILE).is_file():
        raise BabelmoeError(
            f"no analysis in {run_dir} (missing analysis/summary.json)",
            f"run `babelmoe analyse {run_dir}` first",
        )
    summary = read_json(
        run_dir / artifacts.ANALYSIS_DIR / artifacts.SUMMARY_FILE,
        fix=f"re-run `babelmoe analyse {run_dir}`",
        required=SUMMARY_FIELDS,
    )
    sections = analysis_sections(run_dir)
    sections += load_hook_sections(run_dir)
    sections.append(config_section(run_dir))
    model = (summary.get("profile") or {}).get("model") or {}
    subtitle = (
        f"run folder {run_dir.resolve().name}; model "
        f"{model.get('name') or model.get('id') or 'unknown'}; "
        f"{len(summary['languages'])} languages; {summary['n_layers']} layers x "
        f"{summary['n_experts']} experts"
    )
    out = Path(out) if out else run_dir / REPORT_FILE
    atomic_write_text(out, render_document("babelmoe report", subtitle, sections))
    logger.info("wrote %s", out)
    return out
