"""The runner of ``babelmoe diff``: compare the profiles of two run folders (base vs
instruction-tuned, or corpus A vs B).

``run_diff(config, out, run_a=RUN_A, run_b=RUN_B)`` writes the diff tables, ``summary.json``,
figures in ``OUT/figures/``, ``OUT/report.html`` and ``OUT/report_section.json``; with OUT inside
a run folder (e.g. ``RUN_B/diff_vs_base``) that run's report includes the diff as a section.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from babelmoe import artifacts
from babelmoe.analysis.config import DiffConfig
from babelmoe.analysis.diff import diff_profiles
from babelmoe.analysis.diff_summary import diff_summary, diff_tables
from babelmoe.analysis.io import clean, write_tables
from babelmoe.errors import BabelmoeError
from babelmoe.plots.html import render_document
from babelmoe.plots.sections import diff_section
from babelmoe.profile.artifact import load_profile

logger = logging.getLogger(__name__)


def run_diff(
    config: DiffConfig | None, out: Path, *, run_a: Path, run_b: Path, figures: bool = True
) -> dict[str, Any]:
    """Compare the profiles of the run folders ``run_a`` and ``run_b``; write into ``out`` (the
    folder it writes, as a run folder is the other stages'); returns the diff summary."""
    config = config or DiffConfig()
    run_a, run_b, out = Path(run_a), Path(run_b), Path(out)
    a, b = load_profile(run_a), load_profile(run_b)
    if a.n_layers != b.n_layers or a.n_experts != b.n_experts:
        raise BabelmoeError(
            f"{run_a} has {a.n_layers} layers x {a.n_experts} experts but {run_b} has "
            f"{b.n_layers} layers x {b.n_experts} experts",
            "diff two profiles of one architecture split into the same number of experts",
        )
    result = diff_profiles(a, b, config)
    tables = diff_tables(result, config)
    summary = diff_summary(result, config, (str(run_a), str(run_b)))
    with artifacts.run_lock(out):
        write_tables(out, tables)
        artifacts.atomic_write_json(out / artifacts.SUMMARY_FILE, summary)
        entries = []
        if figures:
            from babelmoe.plots.figures import diff_figures

            entries = diff_figures(
                result, out / artifacts.FIGURES_DIR, (run_a.name, run_b.name), config.primary_metric
            )
        rows = {name: clean(r) for name, (_, r) in tables.items()}
        section = diff_section(summary, rows, [(out / e["png"], e["caption"]) for e in entries])
        artifacts.atomic_write_json(
            out / artifacts.SECTION_FILE,
            {
                "schema_version": artifacts.SCHEMA_VERSION,
                "title": f"Model diff: {run_a.name} vs {run_b.name}",
                "order": 80,
                "html": section.html,
                "figures": [{"path": e["png"], "caption": e["caption"]} for e in entries],
            },
        )
        page = render_document(
            f"babelmoe diff: {run_a.name} vs {run_b.name}", f"A = {run_a}, B = {run_b}", [section]
        )
        artifacts.atomic_write_text(out / artifacts.REPORT_FILE, page)
    logger.info("wrote %s", out)
    return summary
