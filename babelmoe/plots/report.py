"""The self-contained HTML report of a run folder, and the hook other stages use to add to it.

``build_report(run_dir)`` writes ``RUN_DIR/report.html``: one file with inline CSS, every figure
embedded (PNG as base64 data URIs, SVG inline), the tables, the headline findings as sentences and
the run's configuration. It opens offline; nothing is fetched. It needs ``babelmoe analyse``
to have written ``RUN_DIR/analysis/`` (summary.json, figures.json and the tables).

Section hook (for later stages, e.g. prune/sweep): any ``RUN_DIR/<folder>/report_section.json``
becomes a section of the report, after the analysis sections and before the configuration::

    {"title": "Pruning sweep",                 # section heading (required)
     "html": "<p>Perplexity rises ...</p>",    # trusted HTML fragment, inserted as is
     "figures": [{"path": "sweep/curve.png", "caption": "..."}, "sweep/other.svg"],
     "tables": [{"path": "curves.csv", "title": "...", "max_rows": 50}],
     "order": 50,                              # sections sort by (order, folder); default 100
     "schema_version": 1}                      # optional; when present it must match

Everything but ``title`` is optional. A path is looked up relative to the folder holding the
JSON, then relative to the run folder. .png/.jpg are embedded as data URIs, .svg inline (a PNG
listed with its SVG twin is embedded once); tables may be CSV files or JSON tables written by
``analysis.tables.write_table``. A section file that cannot be read is shown as a note in the
page (and logged), not fatal.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import babelmoe.artifacts as artifacts_names
from babelmoe.analysis.tables import read_json
from babelmoe.artifacts import REPORT_FILE, SCHEMA_VERSION, atomic_write_text
from babelmoe.errors import BabelmoeError

log = logging.getLogger(__name__)

SECTION_FILE = artifacts_names.SECTION_FILE

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d232a;
background:#fafafa;line-height:1.45}
main{max-width:1150px;margin:0 auto;padding:1.5rem 2rem 4rem;background:#fff}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #e3e6ea;padding-bottom:.2rem;margin-top:2.2rem}
nav ol{columns:2;font-size:.92rem}.sub{color:#5b6570;margin-top:0}
figure{margin:1.2rem 0;text-align:center}figure img,figure svg{max-width:100%;height:auto}
figcaption{font-size:.88rem;color:#4a535c;margin-top:.3rem;text-align:left}
table{border-collapse:collapse;font-size:.82rem;margin:.6rem 0 1.2rem;display:block;
overflow-x:auto;max-width:100%}th,td{border:1px solid #d9dde2;padding:.2rem .45rem;text-align:right}
th{background:#f0f2f4}td:first-child,th:first-child{text-align:left}
.finding{background:#f3f7fb;border-left:4px solid #3a78b5;padding:.45rem .8rem;margin:.5rem 0}
.note{color:#7a5a00;font-size:.9rem}pre{background:#f6f8fa;padding:.7rem;overflow-x:auto;
font-size:.8rem}caption{text-align:left;font-weight:600;padding:.2rem 0}
"""

# Marks the page once every image has decoded (used by the headless-browser test).
_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.images, ok = true;
  for (var i = 0; i < imgs.length; i++) {
    if (!(imgs[i].complete && imgs[i].naturalWidth > 0)) { ok = false; }
  }
  document.body.setAttribute('data-images-ok', ok ? 'true' : 'false');
  document.body.setAttribute('data-image-count', String(imgs.length));
});
"""


@dataclass
class Section:
    """One section of the report: a heading, trusted HTML, figures, ordered by ``order``."""

    title: str
    html: str = ""
    figures: list[tuple[Path, str]] = field(default_factory=list)  # (file, caption)
    order: float = 100.0

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-") or "section"


def esc(value: Any) -> str:
    """HTML-escaped text of any value."""
    return html.escape("" if value is None else str(value))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return esc(value)


def table_html(
    rows: list[dict[str, Any]], title: str = "", max_rows: int = 60, source: str = ""
) -> str:
    """An HTML table of dict rows (first ``max_rows``), with a note when it is cut."""
    if not rows:
        return f"<p class='note'>{esc(title)}: no rows.</p>"
    columns = list(rows[0])
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in columns) + "</tr>"
        for r in rows[:max_rows]
    )
    cap = f"<caption>{esc(title)}</caption>" if title else ""
    more = ""
    if len(rows) > max_rows:
        more = (
            f"<p class='note'>Showing {max_rows} of {len(rows)} rows"
            + (f"; the full table is in <code>{esc(source)}</code>" if source else "")
            + ".</p>"
        )
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def figure_html(path: Path, caption: str) -> str:
    """A figure embedded in the page: PNG/JPEG as a data URI, SVG inline."""
    path = Path(path)
    if not path.is_file():
        return f"<p class='note'>missing figure {esc(path.name)}</p>"
    suffix = path.suffix.lower()
    if suffix == ".svg":
        svg = path.read_text(encoding="utf-8")
        svg = svg[svg.find("<svg") :] if "<svg" in svg else svg
        body = svg
    else:
        mime = "image/png" if suffix == ".png" else "image/jpeg"
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        body = f"<img src='data:{mime};base64,{data}' alt='{esc(caption or path.stem)}'>"
    return f"<figure>{body}<figcaption>{esc(caption)}</figcaption></figure>"


def render_document(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole page."""
    sections = sorted(sections, key=lambda s: s.order)
    toc = "".join(f"<li><a href='#{s.anchor}'>{esc(s.title)}</a></li>" for s in sections)
    parts = []
    for s in sections:
        figures = "".join(figure_html(p, c) for p, c in s.figures)
        parts.append(f"<section id='{s.anchor}'><h2>{esc(s.title)}</h2>{s.html}{figures}</section>")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body><main>"
        f"<h1>{esc(title)}</h1><p class='sub'>{esc(subtitle)}</p>"
        f"<nav><ol>{toc}</ol></nav>{''.join(parts)}</main>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


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
            tables = "".join(
                table_html(
                    _read_rows(base / t["path"]),
                    t.get("title", t["path"]),
                    int(t.get("max_rows", 60)),
                    f"{base.name}/{t['path']}",
                )
                for t in spec.get("tables", [])
            )
            html_part = str(spec.get("html", "")) + tables
            order = float(spec.get("order", 100))
            sections.append(Section(str(spec["title"]), html_part, figures, order))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, BabelmoeError) as exc:
            log.warning("report section %s skipped: %s", path, exc)
            note = f"<p class='note'>{esc(path.name)}: {esc(exc)}</p>"
            sections.append(Section(f"{base.name} (unreadable section)", note, [], 900))
    return sections


def build_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write the report of ``run_dir`` (default ``RUN_DIR/report.html``); returns its path."""
    from babelmoe.plots.sections import analysis_sections, config_section

    run_dir = Path(run_dir)
    if not (run_dir / "analysis" / "summary.json").is_file():
        raise BabelmoeError(
            f"no analysis in {run_dir} (missing analysis/summary.json)",
            f"run `babelmoe analyse {run_dir}` first",
        )
    sections = analysis_sections(run_dir)
    sections += load_hook_sections(run_dir)
    sections.append(config_section(run_dir))
    summary = read_json(run_dir / "analysis" / "summary.json")
    model = (summary.get("profile") or {}).get("model") or {}
    subtitle = (
        f"run folder {run_dir.resolve().name}; model "
        f"{model.get('name') or model.get('id') or 'unknown'}; "
        f"{len(summary['languages'])} languages; {summary['n_layers']} layers x "
        f"{summary['n_experts']} experts"
    )
    out = Path(out) if out else run_dir / REPORT_FILE
    atomic_write_text(out, render_document("babelmoe report", subtitle, sections))
    log.info("wrote %s", out)
    return out
