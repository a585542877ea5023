"""The HTML building blocks of every report page: one leaf module (no babelmoe imports).

``Section`` is one section; ``table_html``, ``figure_html`` and ``details_html`` render tables,
embedded figures and collapsible blocks; ``render_document`` the whole self-contained page.

The shape of a section, in the order the page shows it (figures first, detail one click away):

1. ``lead``: one plain-language sentence that carries the number ("Script predicts activation
   distance: Mantel r = 0.69, p = 0.0008");
2. ``figures``: (file, caption) pairs; a caption starts with one plain sentence that carries the
   figure's number, then says how to read it;
3. ``html``: a short paragraph, if any (trusted HTML, inserted as is);
4. ``details``: (summary, HTML) pairs, each a collapsed ``<details>`` block: the statistics
   in full, method notes, long tables.

A compact section is ``Section(title, lead=..., figures=[(png, caption)], details=[("Statistics",
html)])``. Tables longer than ``COLLAPSE_ROWS`` rows collapse by themselves, and every table
scrolls inside its own box, so no element is wider than the page. Report sections from other
stages come as ``report_section.json`` files with the same fields (``babelmoe.stages.report``).
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d232a;
background:#fafafa;line-height:1.45}
main{max-width:1150px;margin:0 auto;padding:1.5rem 2rem 4rem;background:#fff}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #e3e6ea;padding-bottom:.2rem;margin-top:2.2rem}
nav ol{columns:2;font-size:.92rem}.sub{color:#5b6570;margin-top:0}
figure{margin:1.2rem 0;text-align:center}figure img,figure svg{max-width:100%;height:auto}
figcaption{font-size:.88rem;color:#4a535c;margin-top:.3rem;text-align:left}
main{overflow-wrap:break-word}.lead{font-size:1.05rem;margin:.6rem 0}
table{border-collapse:collapse;font-size:.82rem;margin:.6rem 0 1.2rem;display:block;
overflow-x:auto;max-width:100%}th,td{border:1px solid #d9dde2;padding:.2rem .45rem;text-align:right}
.scroll{overflow-x:auto;max-width:100%}.scroll table{display:table;margin:.3rem 0}
details{margin:.5rem 0;border:1px solid #e3e6ea;border-radius:4px;padding:.3rem .7rem}
summary{cursor:pointer;color:#2b5f93;font-weight:600}details[open] summary{margin-bottom:.4rem}
figcaption b{color:#1d232a}
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


# Tables with more rows than this are collapsed (a click shows them).
COLLAPSE_ROWS = 12


@dataclass
class Section:
    """One section of the report, ordered by ``order`` (see the module docstring for how it is
    laid out: lead, figures, html, collapsed details)."""

    title: str
    html: str = ""
    figures: list[tuple[Path, str]] = field(default_factory=list)  # (file, caption)
    order: float = 100.0
    lead: str = ""  # one plain sentence with the number (text, escaped)
    details: list[tuple[str, str]] = field(default_factory=list)  # (summary text, HTML)

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


def details_html(summary: str, body: str, open_: bool = False) -> str:
    """A collapsible block: ``summary`` (text) shown, ``body`` (trusted HTML) a click away."""
    flag = " open" if open_ else ""
    return f"<details{flag}><summary>{esc(summary)}</summary>{body}</details>"


def table_html(
    rows: list[dict[str, Any]],
    title: str = "",
    max_rows: int = 60,
    source: str = "",
    collapse_rows: int | None = COLLAPSE_ROWS,
) -> str:
    """An HTML table of dict rows (first ``max_rows``) in a box that scrolls sideways, with a
    note when it is cut; collapsed behind its title when longer than ``collapse_rows`` rows
    (None: never)."""
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
    table = (
        f"<div class='scroll'><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
        f"</table></div>{more}"
    )
    if collapse_rows is not None and len(rows) > collapse_rows:
        return details_html(f"{title or 'table'} ({len(rows)} rows)", table)
    return table


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
        lead = f"<p class='lead'>{esc(s.lead)}</p>" if s.lead else ""
        figures = "".join(figure_html(p, c) for p, c in s.figures)
        details = "".join(details_html(summary, body) for summary, body in s.details)
        parts.append(
            f"<section id='{s.anchor}'><h2>{esc(s.title)}</h2>{lead}{figures}{s.html}{details}"
            "</section>"
        )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body><main>"
        f"<h1>{esc(title)}</h1><p class='sub'>{esc(subtitle)}</p>"
        f"<nav><ol>{toc}</ol></nav>{''.join(parts)}</main>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
