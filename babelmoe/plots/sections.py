"""Report sections built from what ``analyse`` and ``diff`` wrote (files only, no recomputation)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from babelmoe.analysis.io import read_json, read_table
from babelmoe.artifacts import ANALYSIS_DIR, FIGURES_FILE, PARTITION, PROFILE, SUMMARY_FILE
from babelmoe.plots.html import Section, details_html, esc, figure_html, table_html

# Which analysis figures go in which section (others land in "More figures").
_PLACES = {
    "headline": ["dendrograms"],
    "similarity": ["similarity_matrices", "distance_scatter"],
    "agreement": ["agreement_by_layer"],
    "experts": ["frequency_heatmaps", "expert_counts"],
    "differences": ["difference_from_mean", "difference_pairs"],  # collapsed under "experts"
    "stability": ["seed_stability"],
}

SMALL_SAMPLE = 20
"""Below this many languages the headline warns that its references are confounded."""


def findings_html(findings: list[dict[str, str]]) -> str:
    return "".join(
        f"<div class='finding'><strong>{esc(f['topic'])}.</strong> {esc(f['text'])}</div>"
        for f in findings
    )


def _p(value: float | None) -> str:
    """A p-value as people read it: 0.012, 0.0008, 2e-05."""
    if value is None:
        return "n/a"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3g}"


def _pairs(rows: list[dict[str, Any]], names: dict[str, str], similar: bool) -> str | None:
    """'Spanish and Portuguese are the closest pair (0.05), Arabic and Hindi the farthest (0.4)'
    from the whole-model rows of the primary metric (``similar``: a similarity, high = close)."""
    rows = [r for r in rows if r.get("value") is not None and r["lang_a"] != r["lang_b"]]
    if not rows:
        return None
    ranked = sorted(rows, key=lambda r: r["value"], reverse=similar)
    near, far = ranked[0], ranked[-1]

    def pair(r: dict[str, Any]) -> str:
        return f"{names.get(r['lang_a'], r['lang_a'])} and {names.get(r['lang_b'], r['lang_b'])}"

    return (
        f"{pair(near)} are the closest pair ({near['value']:.3g}), {pair(far)} the farthest "
        f"({far['value']:.3g})"
    )


def _plain(summary: dict[str, Any], names: dict[str, str], pairs: str | None) -> dict[str, str]:
    """One plain sentence per topic, each with its number, from ``summary.json`` (what the
    sections lead with and the figures' captions start with)."""
    out: dict[str, str] = {}
    metric = str(summary.get("primary_metric", "")).replace("_", "-")
    if pairs:
        out["pairs"] = f"By {metric}, {pairs}."
    group = summary.get("headline_group") or {}
    if group.get("name"):
        verdict = "closer to each other" if group.get("closer") else "not closer to each other"
        out["group"] = (
            f"The {group['name']} languages ({', '.join(group.get('members', []))}) are "
            f"{verdict} than to the rest (p = {_p(group.get('p_value'))}"
            + (f", Holm-adjusted {_p(group['p_holm'])}" if group.get("p_holm") is not None else "")
            + ")."
        )
    agreement = summary.get("agreement") or {}
    script, genealogy = agreement.get("script"), agreement.get("genealogy")
    if (
        script
        and genealogy
        and script.get("statistic") is not None
        and genealogy.get("statistic") is not None
    ):  # a reference constant over the languages has no Mantel statistic
        out["agreement"] = (
            f"Activation distance follows script (Mantel r = {script['statistic']:.2f}, p = "
            f"{_p(script['p_value'])}) "
            + ("more than" if script["statistic"] > genealogy["statistic"] else "less than")
            + f" genealogy (r = {genealogy['statistic']:.2f}, p = {_p(genealogy['p_value'])})."
        )
        n_languages = len(summary.get("languages", []))
        if n_languages < SMALL_SAMPLE:  # the family-vs-script section says the same in full
            out["agreement"] += (
                f" With {n_languages} languages script, genealogy, geography and how well the "
                "model knows each language are confounded: a hypothesis, not a finding (run "
                "babelmoe study for two larger samples)."
            )
    shared = summary.get("shared_experts") or {}
    if "total" in shared:
        n_all = summary.get("n_layers", 0) * summary.get("n_experts", 0)
        out["shared"] = (
            f"{shared['total']} of {n_all} experts ({100 * shared.get('share', 0):.1f}%) are "
            f"used by all {len(summary.get('languages', []))} languages (frequency >= "
            f"{shared.get('threshold', 0.05):g}); most sit in layer {shared.get('peak_layer')}."
        )
    stability = summary.get("stability") or {}
    if stability.get("n_seeds"):
        holds = [
            f"{name} finding holds in {sum(g['holds'])} of {len(g['holds'])}"
            for name, g in (stability.get("groups") or {}).items()
        ]
        out["stability"] = (
            f"Across {stability['n_seeds']} k-means seeds the expert partitions agree with mean "
            f"adjusted Rand index {stability.get('ari_mean', float('nan')):.2f}"
            + (f"; the {holds[0]} seeds" if holds else "")
            + "."
        )
    order = (summary.get("clustering") or {}).get("order")
    if order:
        out["clustering"] = "Clustered by activation: " + ", ".join(order) + "."
    return out


def _tokens_sentence(n_languages: int, tokens: list[int]) -> str:
    if not tokens:
        return f"{n_languages} languages."
    low, high = min(tokens), max(tokens)
    each = f"{low:,}" if low == high else f"{low:,} to {high:,}"
    return f"{n_languages} languages, {each} profiled tokens each."


# Per figure: which plain sentence its caption starts with.
_CAPTION_LEAD = {
    "dendrograms": "clustering",
    "similarity_matrices": "pairs",
    "distance_scatter": "agreement",
    "agreement_by_layer": "agreement",
    "frequency_heatmaps": "shared",
    "expert_counts": "shared",
    "difference_pairs": "pairs",
    "seed_stability": "stability",
}


def _figures(
    run_dir: Path, entries: list[dict[str, Any]], names: list[str], plain: dict[str, str]
) -> list[tuple[Path, str]]:
    by_name = {e["name"]: e for e in entries}
    out = []
    for n in names:
        if n in by_name:
            lead = plain.get(_CAPTION_LEAD.get(n, ""), "")
            caption = f"{lead} {by_name[n]['caption']}".strip()
            out.append((run_dir / by_name[n]["png"], caption))
    return out


def analysis_sections(run_dir: Path) -> list[Section]:
    """The analysis, figures first: each section leads with one plain sentence and its
    figures; the statistics and the tables are one click away."""
    folder = run_dir / ANALYSIS_DIR
    summary = read_json(folder / SUMMARY_FILE)
    figures_path = folder / FIGURES_FILE
    entries = read_json(figures_path)["figures"] if figures_path.is_file() else []
    metric = summary["primary_metric"]
    src = f"{ANALYSIS_DIR}/"
    languages = read_table(folder, "languages")
    # short names for sentences: "Arabic, Standard" -> "Arabic", "Portuguese (Brazil)" -> ...
    names = {
        r["code"]: (r.get("name") or r["code"]).split(",")[0].split("(")[0].strip() or r["code"]
        for r in languages
    }
    similarity = [
        r
        for r in read_table(folder, "similarity")
        if r["scope"] == "model" and r["metric"] == metric
    ]
    similar = metric in ("pearson", "spearman", "cosine")
    plain = _plain(summary, names, _pairs(similarity, names, similar))

    def figures(key: str) -> list[tuple[Path, str]]:
        return _figures(run_dir, entries, _PLACES[key], plain)

    notes = "".join(f"<p class='note'>{esc(n)}</p>" for n in summary.get("notes", []))
    glance = " ".join(plain[k] for k in ("group", "agreement", "shared") if k in plain)
    sections = [
        Section(
            "Headline findings",
            lead=glance,
            figures=figures("headline"),
            details=[
                (
                    f"Every finding with its statistics ({len(summary['findings'])})",
                    findings_html(summary["findings"]) + notes,
                )
            ],
            order=10,
        )
    ]
    sections.append(
        Section(
            "Similarity between languages",
            figures=figures("similarity"),
            details=[
                (
                    f"All pairs, whole model ({metric})",
                    "<p>Frequency vectors of all layers' experts compared between languages; "
                    "intervals are percentile bootstrap intervals over documents. Per-layer "
                    f"values for every metric are in <code>{src}similarity.csv</code>.</p>"
                    + table_html(
                        similarity,
                        f"whole model, {metric}",
                        source=src + "similarity.csv",
                        collapse_rows=None,
                    ),
                )
            ],
            order=30,
        )
    )

    agreement = [r for r in read_table(folder, "agreement") if r["layer"] is None]
    groups = read_table(folder, "groups")
    sections.append(
        Section(
            "Genealogy, script and language groups",
            lead=plain.get("group", ""),
            figures=figures("agreement"),
            details=[
                (
                    "Mantel and group tests",
                    "<p>Mantel tests correlate activation distance with genealogical distance "
                    "(shared ancestry in the classification), family, genus and script; partial "
                    "tests remove one reference from the other. Group tests compare the mean "
                    "distance within a group with its mean distance to the other languages; "
                    "p-values come from relabeling languages.</p>"
                    + table_html(
                        agreement, "whole-model Mantel tests", source=f"{src}agreement.csv"
                    )
                    + table_html(groups, "group tests", source=src + "groups.csv"),
                )
            ],
            order=40,
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
            figures=figures("experts"),
            details=[
                (
                    "Where each language differs from the others (figures)",
                    "".join(figure_html(p, c) for p, c in figures("differences")),
                ),
                (
                    "Experts per layer",
                    table_html(
                        list(pivot.values()),
                        "experts per layer",
                        source=src + "experts_per_layer.csv",
                        collapse_rows=None,
                    ),
                ),
            ],
            order=50,
        )
    )

    if summary.get("stability"):
        tables = [
            (title, table_html(read_table(folder, name), title, source=f"{src}{name}.csv"))
            for name, title in (
                ("stability_groups", "group tests per seed"),
                ("stability_shared", "shared experts per layer and seed"),
            )
            if (folder / f"{name}.json").is_file()
        ]
        sections.append(
            Section(
                "Stability over k-means seeds",
                figures=figures("stability"),
                details=[("Per seed", "".join(t for _, t in tables))] if tables else [],
                order=60,
            )
        )
    tokens = summary.get("tokens") or {}
    sections.append(
        Section(
            "Languages and data",
            lead=_tokens_sentence(len(languages), list(tokens.values())),
            details=[
                (
                    "The languages: family, genus, script, tokens",
                    table_html(
                        languages,
                        "profiled languages",
                        source=src + "languages.csv",
                        collapse_rows=None,
                    ),
                )
            ],
            order=65,
        )
    )
    placed = {n for names in _PLACES.values() for n in names}
    rest = [e["name"] for e in entries if e["name"] not in placed]
    if rest:
        sections.append(Section("More figures", "", _figures(run_dir, entries, rest, plain), 70))
    return sections


def _json_block(title: str, value: Any) -> str:
    return details_html(
        title, f"<pre>{esc(json.dumps(value, indent=2, ensure_ascii=False, default=str))}</pre>"
    )


def config_section(run_dir: Path) -> Section:
    """The configuration of every stage whose JSON is in the run folder, each collapsed."""
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
    return Section(
        "Configuration",
        "".join(parts),
        [],
        1000,
        lead="What made this run, as the run folder's JSON files record it.",
    )


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
