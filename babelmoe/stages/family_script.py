"""Family against script, and shared experts against a null model: the stage that writes them.

``run_family_script(config, run_dir)`` reads the run's profile, runs
:func:`babelmoe.analysis.script_genealogy.script_genealogy` and
:func:`babelmoe.analysis.expert_null.expert_null`, and writes into ``RUN_DIR/family_vs_script/``:

- ``summary.json``: the blocks ``family_vs_script`` and ``expert_null`` (numbers and sentences);
- ``family_vs_script.csv/.json``: one row per (scope, reference): Mantel and partial Mantel r,
  permutation p (Holm over layers), bootstrap interval, unique R^2, verdict;
- ``expert_null.csv/.json``: per layer and kind (shared, specific): observed, expected under the
  null, ratio, excess, p-value, the layer's share of selections;
- ``figures/family_vs_script.png/.svg`` (the one figure of the question) and
  ``figures/expert_null.png/.svg``;
- ``report_section.json``: the report's section (``stages.report`` picks it up);
- the MRM of :mod:`babelmoe.analysis.family_mrm` (all predictors at once, language-level
  intervals): ``mrm.csv/.json`` (per scope and predictor), ``mrm_restricted.csv/.json``
  (restricted permutation tests), ``mrm_lofo.csv/.json`` (leave one family out),
  ``mrm_moderator.csv/.json`` (resource as a moderator) and ``claims.json`` (the claims the
  headline rests on, Holm-adjusted together; the replication reads it). Its predictors come from
  the covariates (``analysis.covariates.load_covariates``) when they exist, else from the script
  and genealogical distances above.

A profile the family-against-script analysis cannot use (fewer than 4 languages; one script or
one family for all) gets a note instead, and the null model still runs.
"""

from __future__ import annotations

import html
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from babelmoe import artifacts
from babelmoe.analysis import expert_null as en
from babelmoe.analysis import family_mrm as fm
from babelmoe.analysis import script_genealogy as sg
from babelmoe.analysis.io import clean, read_table, write_table
from babelmoe.errors import BabelmoeError
from babelmoe.profile.artifact import ProfileData, load_profile

logger = logging.getLogger(__name__)

FOLDER = "family_vs_script"
SECTION_ORDER = 60
CLAIMS_FILE = "claims.json"

REFERENCE_SOURCES = {
    "script": "1 - overlap of the languages' script distributions (profile metadata)",
    "genealogy": "Glottolog lineage: 1 - shared depth / deepest lineage in the set",
}


def run_family_script(
    config: sg.ScriptGenealogyConfig | None,
    run_dir: Path,
    *,
    null_cfg: en.ExpertNullConfig | None = None,
    profile: ProfileData | None = None,
    distance_samples: tuple[np.ndarray, np.ndarray] | None = None,
    figures: bool = True,
    mrm_cfg: fm.MRMConfig | None = None,
) -> dict[str, Any]:
    """Run both analyses on ``run_dir``'s profile and write them (module docstring).

    Returns ``{"family_vs_script": block or None, "expert_null": block, "notes": [...]}``;
    the MRM's block is ``family_vs_script["mrm"]`` and its sentences come first in
    ``family_vs_script["findings"]``. ``mrm_cfg`` defaults to ``MRMConfig`` with the
    permutations, level and seed of ``config``.
    """
    run_dir = Path(run_dir)
    sg_cfg = config or sg.ScriptGenealogyConfig()
    mrm_cfg = mrm_cfg or mrm_config(sg_cfg)
    null_cfg = null_cfg or en.ExpertNullConfig()
    profile = profile if profile is not None else load_profile(run_dir)
    notes: list[str] = []
    result: sg.ScriptGenealogyResult | None = None
    try:
        result = sg.script_genealogy(profile, sg_cfg, distance_samples=distance_samples)
    except BabelmoeError as exc:
        notes.append(f"family against script skipped: {exc.one_line()}")
        logger.info("%s", notes[-1])
    mrm_result: fm.MRMResult | None = None
    claim_block: dict[str, Any] | None = None
    fvs = clean(sg.summary(result, sg_cfg)) if result is not None else None
    if result is not None and result.distances is not None:
        predictors, features, sources, cov_notes = load_predictors(
            run_dir, result, (fvs or {}).get("measures")
        )
        notes += cov_notes
        start = time.perf_counter()
        try:
            mrm_result = fm.family_mrm(
                result.distances,
                predictors,
                profile.languages,
                result.labels,
                mrm_cfg,
                features=features,
                sources=sources,
            )
            claim_block = clean(fm.claims(mrm_result, mrm_cfg))
            logger.info("MRM: %.1f s", time.perf_counter() - start)
        except BabelmoeError as exc:
            notes.append(f"MRM skipped: {exc.one_line()}")
            logger.info("%s", notes[-1])
    null = en.expert_null(profile.frequency.numpy(), null_cfg)
    if fvs is not None and mrm_result is not None and claim_block is not None:
        fvs["mrm"] = clean(fm.summary(mrm_result, mrm_cfg, claim_block))
        fvs["findings"] = [*fvs["mrm"]["headline"], *fvs["findings"]]
    blocks: dict[str, Any] = {
        "family_vs_script": fvs,
        "expert_null": clean(en.summary(null, null_cfg)),
        "notes": notes,
    }
    out = run_dir / FOLDER
    with artifacts.run_lock(run_dir):
        if result is not None:
            write_table(
                out,
                "family_vs_script",
                sg.layer_rows(result, sg_cfg.statistics.alpha),
                "Partial Mantel of activation distance on script and genealogical distance",
            )
        if mrm_result is not None and claim_block is not None:
            _write_mrm(out, mrm_result, claim_block)
        write_table(
            out,
            "expert_null",
            en.layer_rows(null),
            "Shared and specific experts per layer: more than the layer's share of selections "
            "(within-layer permutation null; language labels: see language_null/)",
        )
        entries = _figures(out, blocks) if figures else []
        artifacts.atomic_write_json(
            out / artifacts.SUMMARY_FILE,
            {"schema_version": artifacts.SCHEMA_VERSION, "kind": "family_vs_script", **blocks},
        )
        artifacts.atomic_write_json(out / artifacts.SECTION_FILE, _section(blocks, entries))
    logger.info("wrote %s", out)
    return blocks


def mrm_config(sg_cfg: sg.ScriptGenealogyConfig) -> fm.MRMConfig:
    """The MRM settings that follow the family-against-script config (its statistics: same
    relabelings, level, alpha and seed; the MRM reuses the Mantel tests' relabelings, and as
    many within blocks)."""
    return fm.MRMConfig(
        statistics=sg_cfg.statistics,
        n_restricted_permutations=sg_cfg.statistics.n_permutations,
    )


def load_predictors(
    run_dir: Path,
    result: sg.ScriptGenealogyResult,
    measures: dict[str, Any] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, str], list[str]]:
    """The MRM's predictor distances, per-language features and sources, in the profile's
    language order: the run's covariates when ``analysis.covariates`` exists and finds them for
    every profiled language, else the script and genealogical distances of ``result`` (their
    sources from ``measures``, the family-vs-script summary's block, when it has one)."""
    names = ("script", "genealogy")
    sources = dict(REFERENCE_SOURCES)
    for name in names:
        source = ((measures or {}).get(name) or {}).get("source")
        if source:
            sources[name] = str(source)
    fallback = ({name: result.references[name] for name in names}, {}, sources)
    try:
        from babelmoe.analysis.covariates import load_covariates
    except ImportError:
        return *fallback, ["no covariates module: the MRM uses script and genealogy only"]
    try:
        cov = load_covariates(run_dir)
    except BabelmoeError as exc:
        return *fallback, [f"covariates unreadable ({exc.one_line()}): script and genealogy only"]
    if cov is None:
        return *fallback, ["no covariates in this run: the MRM uses script and genealogy only"]
    position = {label: i for i, label in enumerate(cov.languages)}
    missing = [label for label in result.labels if label not in position]
    if missing:
        return *fallback, [
            f"covariates lack {', '.join(missing[:5])}: the MRM uses script and genealogy only"
        ]
    idx = np.array([position[label] for label in result.labels])
    distances = {k: np.asarray(v, np.float64)[np.ix_(idx, idx)] for k, v in cov.distances.items()}
    features = {k: np.asarray(v, np.float64)[idx] for k, v in cov.features.items()}
    return distances, features, dict(cov.sources), []


def _write_mrm(out: Path, result: fm.MRMResult, claim_block: dict[str, Any]) -> None:
    headline = {c["id"]: c["p_adjusted"] for c in claim_block["claims"]}
    write_table(
        out,
        "mrm",
        fm.mrm_rows(result, headline),
        "MRM of activation distance on all predictors at once: standardised coefficients, "
        "permutation p (Holm over the headline family for the whole model, over layers for a "
        "layer), language-bootstrap intervals, jackknife range, unique and joint R^2",
    )
    write_table(
        out,
        "mrm_restricted",
        fm.restricted_rows(result, headline),
        "MRM coefficients tested by relabeling languages only within blocks",
    )
    write_table(
        out,
        "mrm_lofo",
        fm.lofo_rows(result),
        "Whole-model MRM coefficients with one family left out",
    )
    write_table(
        out,
        "mrm_moderator",
        fm.moderator_rows(result, headline),
        "MRM coefficients in the better- and less-served half of the languages",
    )
    artifacts.atomic_write_json(out / CLAIMS_FILE, claim_block)


def _figures(out: Path, blocks: dict[str, Any]) -> list[dict[str, str]]:
    from babelmoe.plots import family_script
    from babelmoe.plots.base import save_figure

    folder = out / artifacts.FIGURES_DIR
    entries = []
    block = blocks["family_vs_script"]
    if block is not None:
        png, _ = save_figure(family_script.family_vs_script(block), folder, "family_vs_script")
        entries.append(
            {
                "path": str(png.relative_to(out)),
                "caption": (
                    f"How far activation distance follows script (blue) and genealogy (red), "
                    f"each with the other held fixed (partial Mantel, Spearman, over "
                    f"{block['n_pairs']:,} language pairs). Left: whole model, with "
                    f"{block['ci_level']:.0%} bootstrap intervals and permutation p-values. "
                    f"Right: per layer. Script: {block['measures']['script']['source']}. "
                    f"Genealogy: {block['measures']['genealogy']['source']}."
                ),
            }
        )
    if block is not None and block.get("mrm") and (out / "mrm.json").is_file():
        rows = read_table(out, "mrm")
        png, _ = save_figure(family_script.mrm_coefficients(block["mrm"], rows), folder, "mrm")
        entries.insert(
            0,
            {
                "path": str(png.relative_to(out)),
                "caption": (
                    "Activation distance on all predictors at once (MRM on "
                    f"{'ranks' if block['mrm']['ranks'] else 'raw distances'}): standardised "
                    "coefficients with intervals from resampling languages. Left: whole model; "
                    "right: per layer."
                ),
            },
        )
    png, _ = save_figure(
        family_script.expert_null_counts(blocks["expert_null"]), folder, "expert_null"
    )
    entries.append(
        {
            "path": str(png.relative_to(out)),
            "caption": (
                "Shared and language-specific experts per layer (bars) against the number "
                "expected if each language's frequencies were shuffled over the layer's experts "
                "(line): the null keeps every layer's share of selections and destroys only the "
                "match of experts across languages: more than the layer's share of "
                "selections, not a test about language (see the language-label null)."
            ),
        }
    )
    return entries


def _section(blocks: dict[str, Any], entries: list[dict[str, str]]) -> dict[str, Any]:
    parts = []
    block = blocks["family_vs_script"]
    if block is not None and block.get("mrm"):
        parts.append(_mrm_html(block["mrm"]))
        skip = len(block["mrm"]["headline"])
        parts += [f"<p>{html.escape(text)}</p>" for text in block["findings"][skip:]]
    elif block is not None:
        parts += [f"<p>{html.escape(text)}</p>" for text in block["findings"]]
    parts += [f"<p>{html.escape(text)}</p>" for text in blocks["expert_null"]["findings"]]
    parts += [f"<p class='note'>{html.escape(text)}</p>" for text in blocks["notes"]]
    tables = [{"path": "expert_null.json", "title": "Experts per layer against the null"}]
    if block is not None:
        tables.insert(
            0, {"path": "family_vs_script.json", "title": "Family against script", "max_rows": 40}
        )
    return {
        "schema_version": artifacts.SCHEMA_VERSION,
        "title": "Family against script; shared experts against a null model",
        "order": SECTION_ORDER,
        "html": "".join(parts),
        "figures": entries,
        "tables": tables,
    }


def _mrm_html(block: dict[str, Any]) -> str:
    """The MRM's compact table (whole model), its sentence, and the details folded away."""
    from babelmoe.plots.html import table_html

    def num(x: Any, digits: int = 2) -> str:
        return "n/a" if x is None else f"{x:.{digits}f}"

    def p(x: Any) -> str:
        return "n/a" if x is None else f"{x:.2g}"

    level = f"{block['ci_level']:.0%}"
    rows = [
        {
            "predictor": r["predictor"],
            "beta": num(r["beta"]),
            f"{level} CI (languages)": f"{num(r['ci_low'])} to {num(r['ci_high'])}",
            "p (Holm)": p(r["p_holm"]),
            "unique R^2": num(r["unique_r2"], 3),
            "leave-one-language-out": f"{num(r['jackknife_low'])} to {num(r['jackknife_high'])}",
        }
        for r in block["model"]["coefficients"]
    ]
    model = block["model"]
    head = (
        f"<h3>All predictors at once (MRM on {'ranks' if block['ranks'] else 'raw distances'}, "
        f"{block['n_languages']} languages)</h3>"
        + table_html(rows, "Whole model: standardised coefficients, language-level intervals")
        + "".join(f"<p>{html.escape(text)}</p>" for text in block["headline"])
        + f"<p class='note'>Of R^2 = {num(model['r2'])}, {num(model['joint_r2'], 3)} is "
        "explained only by the predictors together (the joint part); intervals resample "
        "languages, p-values are Holm-adjusted over the claims the headline rests on.</p>"
    )
    details = "".join(
        f"<p>{html.escape(t)}</p>" for t in block["findings"] if t not in block["headline"]
    )
    details += table_html(block["restricted"], "Restricted permutation tests")
    if block["moderators"]:
        details += table_html(block["moderators"], "Resource as a moderator")
    details += "".join(f"<p class='note'>{html.escape(t)}</p>" for t in block["notes"])
    sources = "; ".join(f"{k}: {v}" for k, v in block["sources"].items() if v)
    if sources:
        details += f"<p class='note'>Predictor sources: {html.escape(sources)}</p>"
    details += (
        "<p class='note'>Per-layer coefficients: mrm.csv; leave one family out: mrm_lofo.csv; "
        "claims: claims.json.</p>"
    )
    return (
        head + "<details><summary>MRM details: restricted tests, leave-one-out, moderators, "
        "layers</summary>" + details + "</details>"
    )
