"""Report sections built from what ``analyse`` and ``diff`` wrote (files only, no recomputation)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from babelmoe.analysis.io import read_json, read_table
from babelmoe.artifacts import ANALYSIS_DIR, FIGURES_FILE, PARTITION, PROFILE, SUMMARY_FILE
from babelmoe.plots.html import Section, esc, table_html

# Which analysis figures go in which section (others land in "More figures").
_PLACES = {
    "similarity": ["similarity_matrices", "dendrograms", "distance_scatter"],
    "agreement": ["agreement_by_layer"],
    "experts": ["frequency_heatmaps", "difference_from_mean", "difference_pairs", "expert_counts"],
    "stability": ["seed_stability"],
}


def _figures(
    run_dir: Path, entries: list[dict[str, Any]], names: list[str]
) -> list[tuple[Path, str]]:
    by_name = {e["name"]: e for e in entries}
    return [(run_dir / by_name[n]["png"], by_name[n]["caption"]) for n in names if n in by_name]


def findings_html(findings: list[dict[str, str]]) -> str:
    return "".join(
        f"<div class='finding'><strong>{esc(f['topic'])}.</strong> {esc(f['text'])}</div>"
        for f in findings
    )


def analysis_sections(run_dir: Path) -> list[Section]:
    folder = run_dir / ANALYSIS_DIR
    summary = read_json(folder / SUMMARY_FILE)
    figures_path = folder / FIGURES_FILE
    entries = read_json(figures_path)["figures"] if figures_path.is_file() else []
    metric = summary["primary_metric"]
    src = f"{ANALYSIS_DIR}/"

    notes = "".join(f"<p class='note'>{esc(n)}</p>" for n in summary.get("notes", []))
    sections = [Section("Headline findings", findings_html(summary["findings"]) + notes, [], 10)]
    sections.append(
        Section(
            "Languages and data",
            table_html(
                read_table(folder, "languages"), "profiled languages", source=src + "languages.csv"
            ),
            [],
            20,
        )
    )

    similarity = [
        r
        for r in read_table(folder, "similarity")
        if r["scope"] == "model" and r["metric"] == metric
    ]
    sections.append(
        Section(
            "Similarity between languages",
            "<p>Frequency vectors of all layers' experts compared between languages; intervals are "
            "percentile bootstrap intervals over documents. Per-layer values for every metric are "
            f"in <code>{src}similarity.csv</code>.</p>"
            + table_html(similarity, f"whole model, {metric}", source=src + "similarity.csv"),
            _figures(run_dir, entries, _PLACES["similarity"]),
            30,
        )
    )

    agreement = [r for r in read_table(folder, "agreement") if r["layer"] is None]
    groups = read_table(folder, "groups")
    sections.append(
        Section(
            "Genealogy, script and language groups",
            "<p>Mantel tests correlate activation distance with genealogical distance (shared "
            "ancestry in the classification), family, genus and script; partial tests remove one "
            "reference from the other. Group tests compare the mean distance within a group with "
            "its mean distance to the other languages; p-values come from relabeling languages.</p>"
            + table_html(agreement, "whole-model Mantel tests", source=src + "agreement.csv")
            + table_html(groups, "group tests", source=src + "groups.csv"),
            _figures(run_dir, entries, _PLACES["agreement"]),
            40,
        )
    )

    per_layer = read_table(folder, "experts_per_layer")
    pivot: dict[int, dict[str, Any]] = {}
    for row in per_layer:
        entry = pivot.setdefault(row["layer"], {"layer": row["layer"]})
        if row["kind"] == "shared":
            entry["shared"] = row["count"]
            entry["shared_ci"] = f"{row['ci_low']} - {row['ci_high']}"
        else:
            key = f"{row['kind']} total"
            entry[key] = entry.get(key, 0) + row["count"]
    sections.append(
        Section(
            "Shared and language-specific experts",
            table_html(
                list(pivot.values()), "experts per layer", source=src + "experts_per_layer.csv"
            ),
            _figures(run_dir, entries, _PLACES["experts"]),
            50,
        )
    )

    if summary.get("stability"):
        tables = "".join(
            table_html(read_table(folder, name), title, source=f"{src}{name}.csv")
            for name, title in (
                ("stability_groups", "group tests per seed"),
                ("stability_shared", "shared experts per layer and seed"),
            )
            if (folder / f"{name}.json").is_file()
        )
        sections.append(
            Section(
                "Stability over k-means seeds",
                tables,
                _figures(run_dir, entries, _PLACES["stability"]),
                60,
            )
        )
    placed = {n for names in _PLACES.values() for n in names}
    rest = [e["name"] for e in entries if e["name"] not in placed]
    if rest:
        sections.append(Section("More figures", "", _figures(run_dir, entries, rest), 70))
    return sections


def _json_block(title: str, value: Any) -> str:
    return (
        f"<h3>{esc(title)}</h3><pre>"
        f"{esc(json.dumps(value, indent=2, ensure_ascii=False, default=str))}</pre>"
    )


def config_section(run_dir: Path) -> Section:
    """The configuration of every stage whose JSON is in the run folder."""
    parts = []
    for name in (PROFILE, PARTITION):
        path = run_dir / f"{name}.json"
        if not path.is_file():
            parts.append(f"<p class='note'>no {esc(path.name)} in the run folder</p>")
            continue
        meta = json.loads(path.read_text(encoding="utf-8"))
        meta.pop("languages", None)
        keep = {k: v for k, v in meta.items() if k in ("config", "model", "corpus")}
        rest = {k: v for k, v in meta.items() if k not in keep}
        for key, value in keep.items():
            parts.append(_json_block(f"{path.name}: {key}", value))
        parts.append(_json_block(f"{path.name}: other fields", rest))
    summary_path = run_dir / ANALYSIS_DIR / SUMMARY_FILE
    if summary_path.is_file():
        parts.append(_json_block("analysis config", read_json(summary_path).get("config")))
    return Section("Configuration", "".join(parts), [], 1000)


def diff_section(
    summary: dict[str, Any],
    tables: dict[str, list[dict[str, Any]]],
    figures: list[tuple[Path, str]],
) -> Section:
    """The section of a model diff (also the body of the diff's own report)."""
    body = (
        f"<p>A = <code>{esc(summary['run_a'])}</code>, B = <code>{esc(summary['run_b'])}"
        f"</code>; languages: {esc(', '.join(summary['languages']))}.</p>"
        + findings_html(summary["findings"])
        + "".join(f"<p class='note'>{esc(n)}</p>" for n in summary["notes"])
        + table_html(tables["diff_shared"], "shared experts per layer")
        + table_html(
            [r for r in tables["diff_layers"] if r["language"] == "all"],
            "change per layer (all languages)",
        )
    )
    return Section("Model diff", body, figures, 80)
