"""Figures and the HTML report, down to rendering it in a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch

from babelmoe import artifacts
from babelmoe.analysis.config import AnalysisConfig, StatisticsConfig
from babelmoe.errors import BabelmoeError
from babelmoe.plots import heatmaps
from babelmoe.profile.artifact import save_profile
from babelmoe.stages.analyse import run_analysis
from babelmoe.stages.report import SECTION_FILE, build_report
from babelmoe.testing import make_labels, make_profile

CHROMIUM = Path("/usr/bin/chromium")


def _run(folder: Path, seed: int) -> Path:
    save_profile(folder, make_profile(n_layers=3, n_experts=16, seed=seed))
    labels = torch.from_numpy(make_labels(3, 64, 16, seed))
    artifacts.save_artifact(folder, artifacts.PARTITION, {"labels": labels}, {}, kind="partition")
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    main, other = _run(root / "main", 0), _run(root / "seed1", 1)
    cfg = AnalysisConfig(
        statistics=StatisticsConfig(n_bootstrap=30, n_permutations=99, exact_limit=5000)
    )
    run_analysis(cfg, main, seed_runs=[other])
    sweep = main / "sweep"  # the prune stage's convention: paths relative to the run folder
    sweep.mkdir()
    for suffix in ("png", "svg"):
        shutil.copy(main / "figures" / f"expert_counts.{suffix}", sweep / f"sweep.{suffix}")
    (sweep / SECTION_FILE).write_text(
        json.dumps(
            {
                "title": "Pruning sweep",
                "html": "<p id='sweep-text'>Perplexity rises with the pruning rate.</p>",
                "figures": ["sweep/sweep.png", "sweep/sweep.svg"],
            }
        )
    )
    extra = main / "extra"  # paths relative to the section's folder, captions, a table, order
    extra.mkdir()
    shutil.copy(main / "figures" / "dendrograms.png", extra / "extra.png")
    (extra / "extra.csv").write_text("rate,perplexity\n0.1,12.5\n0.2,14.0\n")
    (extra / SECTION_FILE).write_text(
        json.dumps(
            {
                "schema_version": artifacts.SCHEMA_VERSION,
                "title": "Extra stage",
                "order": 75,
                "figures": [{"path": "extra.png", "caption": "extra curve"}],
                "tables": [{"path": "extra.csv", "title": "extra table"}],
            }
        )
    )
    broken = main / "broken"
    broken.mkdir()
    (broken / SECTION_FILE).write_text("{not json")
    build_report(main)
    return main


def test_every_figure_is_a_png_and_a_parseable_svg(run):
    entries = json.loads((run / "analysis" / "figures.json").read_text())["figures"]
    assert {
        "frequency_heatmaps",
        "difference_from_mean",
        "difference_pairs",
        "similarity_matrices",
        "dendrograms",
        "distance_scatter",
        "expert_counts",
        "agreement_by_layer",
        "seed_stability",
    } == {e["name"] for e in entries}
    for entry in entries:
        png = (run / entry["png"]).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 1000
        assert ET.parse(run / entry["svg"]).getroot().tag.endswith("svg")


def test_heatmaps_share_one_colour_scale_and_sort_experts():
    rng = np.random.default_rng(0)
    freq = rng.random((4, 3, 10)) * np.arange(1, 5)[:, None, None]  # languages differ in scale
    fig = heatmaps.frequency_heatmaps(freq, ["a", "b", "c", "d"])
    limits = {im.get_clim() for ax in fig.axes for im in ax.images}
    assert len(limits) == 1
    order = heatmaps.expert_order(freq)
    means = np.take_along_axis(freq.mean(0), order, axis=-1)
    assert (np.diff(means, axis=-1) <= 0).all()
    diff = heatmaps.difference_heatmaps(freq - freq.mean(0), list("abcd"), order, "delta")
    ((low, high),) = {im.get_clim() for ax in diff.axes for im in ax.images}
    assert low == -high


def test_report_is_self_contained_and_complete(run):
    page = (run / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing fetched
    assert "<link" not in page and "@import" not in page
    n_figures = len(json.loads((run / "analysis" / "figures.json").read_text())["figures"])
    family = json.loads((run / "family_vs_script" / "report_section.json").read_text())
    n_family = len([f for f in family["figures"] if str(f["path"]).endswith(".png")])
    assert n_family == 3  # the family-vs-script section of every analysed run (MRM figure first)
    # + one per test hook section
    assert page.count("data:image/png;base64,") == n_figures + n_family + 2
    for anchor in (
        "headline-findings",
        "similarity-between-languages",
        "shared-and-language-specific-experts",
        "stability-over-k-means-seeds",
        "pruning-sweep",
        "configuration",
    ):
        assert f"id='{anchor}'" in page
    assert "Romance (fr, es, pt)" in page and "CI" in page and "p = " in page
    assert "sweep-text" in page and "<svg" not in page  # the SVG twin is not embedded again
    assert "extra table" in page and "14.0" in page and "extra curve" in page
    assert "broken (unreadable section)" in page
    assert "profile.json: config" in page and "top_frac" in page
    assert page.index("id='extra-stage'") < page.index("id='pruning-sweep'")  # order 75 < 100
    assert page.index("id='pruning-sweep'") < page.index("id='configuration'")


def test_report_needs_an_analysis(tmp_path):
    with pytest.raises(BabelmoeError, match="babelmoe analyse"):
        build_report(tmp_path)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_report_renders_in_headless_chromium(run, tmp_path):
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        (run / "report.html").as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    n_images = (run / "report.html").read_text().count("<img ")
    assert 'data-images-ok="true"' in dom  # every <img> decoded (naturalWidth > 0)
    assert f'data-image-count="{n_images}"' in dom and n_images >= 10
    for anchor in ("headline-findings", "pruning-sweep", "configuration"):
        assert f'id="{anchor}"' in dom


# Opens every <details>, then lists what sticks out of a 1,280 px wide page: the page's own
# scroll width, and every element whose right edge passes the viewport without an ancestor that
# clips it (a table scrolling inside its box is fine).
_WIDTH_PROBE = """<script>
window.addEventListener('load', function () {
  document.querySelectorAll('details').forEach(function (d) { d.open = true; });
  var width = window.innerWidth, wide = [];
  document.querySelectorAll('main *').forEach(function (el) {
    var r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= width + 1) { return; }
    for (var up = el.parentElement; up; up = up.parentElement) {
      var box = up.getBoundingClientRect();
      if (getComputedStyle(up).overflowX !== 'visible' && box.right <= width + 1) { return; }
    }
    wide.push(el.tagName + ':' + Math.round(r.right));
  });
  document.body.setAttribute('data-page-width', String(width));
  document.body.setAttribute('data-scroll-width', String(document.documentElement.scrollWidth));
  document.body.setAttribute('data-too-wide', wide.slice(0, 10).join(' ') || 'none');
});
</script></body>"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_report_fits_a_1280_pixel_page_in_headless_chromium(run, tmp_path):
    page = (run / "report.html").read_text().replace("</body>", _WIDTH_PROBE)
    probe = tmp_path / "report.html"
    probe.write_text(page)
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1000",
        "--virtual-time-budget=10000", "--dump-dom", probe.as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    found = dict(re.findall(r'data-(page-width|scroll-width|too-wide)="([^"]*)"', done.stdout))
    assert found["page-width"] == "1280", found
    assert int(found["scroll-width"]) <= 1280, found  # nothing scrolls the page sideways
    assert found["too-wide"] == "none", found
    assert page.count("<details") >= 5  # the statistics, long tables and configuration collapse
