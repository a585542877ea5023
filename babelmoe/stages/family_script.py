"""Family against script, and shared experts against a null model: the stage that writes them.

``run_family_script(run_dir)`` reads the run's profile, runs
:func:`babelmoe.analysis.script_genealogy.script_genealogy` and
:func:`babelmoe.analysis.expert_null.expert_null`, and writes into ``RUN_DIR/family_vs_script/``:

- ``summary.json``: the blocks ``family_vs_script`` and ``expert_null`` (numbers and sentences);
- ``family_vs_script.csv/.json``: one row per (scope, reference): Mantel and partial Mantel r,
  permutation p (Holm over layers), bootstrap interval, unique R^2, verdict;
- ``expert_null.csv/.json``: per layer and kind (shared, specific): observed, expected under the
  null, ratio, excess, p-value, the layer's share of selections;
- ``figures/family_vs_script.png/.svg`` (the one figure of the question) and
  ``figures/expert_null.png/.svg``;
- ``report_section.json``: the report's section (``stages.report`` picks it up).

A profile the family-against-script analysis cannot use (fewer than 4 languages; one script or
one family for all) gets a note instead, and the null model still runs.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Any

import numpy as np

from babelmoe import artifacts
from babelmoe.analysis import expert_null as en
from babelmoe.analysis import script_genealogy as sg
from babelmoe.analysis.io import clean, write_table
from babelmoe.errors import BabelmoeError
from babelmoe.profile.artifact import ProfileData, load_profile

logger = logging.getLogger(__name__)

FOLDER = "family_vs_script"
SECTION_ORDER = 60


def run_family_script(
    run_dir: Path,
    sg_cfg: sg.ScriptGenealogyConfig | None = None,
    null_cfg: en.ExpertNullConfig | None = None,
    profile: ProfileData | None = None,
    distance_samples: tuple[np.ndarray, np.ndarray] | None = None,
    figures: bool = True,
) -> dict[str, Any]:
    """Run both analyses on ``run_dir``'s profile and write them (module docstring).

    Returns ``{"family_vs_script": block or None, "expert_null": block, "notes": [...]}``.
    """
    run_dir = Path(run_dir)
    sg_cfg = sg_cfg or sg.ScriptGenealogyConfig()
    null_cfg = null_cfg or en.ExpertNullConfig()
    profile = profile if profile is not None else load_profile(run_dir)
    notes: list[str] = []
    result: sg.ScriptGenealogyResult | None = None
    try:
        result = sg.script_genealogy(profile, sg_cfg, distance_samples=distance_samples)
    except BabelmoeError as exc:
        notes.append(f"family against script skipped: {exc.one_line()}")
        logger.info("%s", notes[-1])
    null = en.expert_null(profile.frequency.numpy(), null_cfg)
    blocks: dict[str, Any] = {
        "family_vs_script": clean(sg.summary(result, sg_cfg)) if result is not None else None,
        "expert_null": clean(en.summary(null, null_cfg)),
        "notes": notes,
    }
    out = run_dir / FOLDER
    with artifacts.run_lock(run_dir):
        if result is not None:
            write_table(
                out,
                "family_vs_script",
                sg.layer_rows(result, sg_cfg.alpha),
                "Partial Mantel of activation distance on script and genealogical distance",
            )
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
    if block is not None:
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
