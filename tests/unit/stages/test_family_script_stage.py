"""The stage that writes family against script and the shared-expert null model, and the study
preset's configuration."""

from __future__ import annotations

import json
from pathlib import Path

from babelmoe import testing
from babelmoe.analysis.config import StatisticsConfig
from babelmoe.analysis.expert_null import ExpertNullConfig
from babelmoe.analysis.script_genealogy import ScriptGenealogyConfig
from babelmoe.corpus.study import STUDY50_BUDGET, STUDY50_LANGUAGES
from babelmoe.profile.artifact import save_profile
from babelmoe.stages.family_script import FOLDER, run_family_script
from babelmoe.stages.study import StudyConfig

LANGS = getattr(testing, "PAPER_LANGUAGE_INFO", None) or testing.PAPER_LANGUAGES

FAST = ScriptGenealogyConfig(
    statistics=StatisticsConfig(n_permutations=99, exact_limit=10, n_bootstrap=20)
)


def test_writes_tables_figures_summary_and_section(tmp_path: Path) -> None:
    profile = testing.make_profile([dict(x) for x in LANGS], n_layers=3, n_experts=16)
    save_profile(tmp_path, profile)
    blocks = run_family_script(FAST, tmp_path, null_cfg=ExpertNullConfig(n_draws=50))
    out = tmp_path / FOLDER
    for name in ("family_vs_script.csv", "expert_null.csv", "summary.json"):
        assert (out / name).is_file()
    assert (out / "figures" / "family_vs_script.png").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["family_vs_script"]["n_languages"] == 9
    assert len(summary["expert_null"]["shared"]["observed"]) == 3
    assert blocks["family_vs_script"]["model"]["verdict"]
    section = json.loads((out / "report_section.json").read_text())
    assert section["title"].startswith("Family against script")
    assert [f["path"] for f in section["figures"]] == [
        "figures/mrm.png",
        "figures/family_vs_script.png",
        "figures/expert_null.png",
    ]
    assert "partial Mantel" in section["html"]


def test_too_few_languages_is_a_note_not_a_failure(tmp_path: Path) -> None:
    profile = testing.make_profile([dict(x) for x in LANGS[:3]], n_layers=2, n_experts=8)
    save_profile(tmp_path, profile)
    blocks = run_family_script(FAST, tmp_path, null_cfg=ExpertNullConfig(n_draws=10), figures=False)
    assert blocks["family_vs_script"] is None and "at least 4" in blocks["notes"][0]
    assert not (tmp_path / FOLDER / "family_vs_script.csv").exists()
    assert (tmp_path / FOLDER / "expert_null.csv").is_file()


def test_study_config() -> None:
    cfg = StudyConfig()
    assert cfg.profile.languages == list(STUDY50_LANGUAGES)
    assert cfg.profile.token_budget == STUDY50_BUDGET
    assert cfg.analysis.metrics == ("jensen_shannon",)
    assert cfg.analysis.statistics.n_bootstrap == cfg.n_bootstrap
    small = StudyConfig(languages=("en", "fr", "zh", "ar"), budget=100, n_experts=16)
    assert small.split.n_experts == 16 and small.profile.token_budget == 100


def test_analyse_stage_writes_both_blocks_and_the_report_section(tmp_path: Path) -> None:
    from babelmoe.analysis.config import AnalysisConfig
    from babelmoe.stages.analyse import run_analysis
    from babelmoe.stages.report import build_report

    profile = testing.make_profile([dict(x) for x in LANGS], n_layers=3, n_experts=16)
    save_profile(tmp_path, profile)
    stats = StatisticsConfig(n_bootstrap=30, n_permutations=99, exact_limit=10)
    cfg = AnalysisConfig(statistics=stats)
    summary = run_analysis(cfg, tmp_path)
    block = summary["family_vs_script"]
    assert block["n_bootstrap"] == 30  # the analysis's own resamples, not new ones
    assert block["model"]["partial"]["script"]["ci"][0] is not None
    assert summary["expert_null"]["shared"]["expected"]
    topics = {f["topic"] for f in summary["findings"]}
    assert {"family vs script", "null model"} <= topics
    on_disk = json.loads((tmp_path / "analysis" / "summary.json").read_text())
    assert on_disk["family_vs_script"]["model"] == block["model"]
    page = build_report(tmp_path).read_text()
    assert "Family against script" in page and "partial Mantel" in page
