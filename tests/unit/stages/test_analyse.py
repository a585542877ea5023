"""``analyse`` and ``diff`` on synthetic run folders, through the library and the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from babelmoe import artifacts
from babelmoe.analysis.config import AnalysisConfig, DiffConfig, StatisticsConfig
from babelmoe.cli import main
from babelmoe.errors import BabelmoeError
from babelmoe.profile.artifact import save_profile
from babelmoe.stages.analyse import load_partition_labels, run_analysis
from babelmoe.stages.diff import run_diff
from babelmoe.testing import PAPER_LANGUAGE_INFO, make_labels, make_profile

QUICK = StatisticsConfig(n_bootstrap=40, n_permutations=99, exact_limit=5000)


def make_run(
    folder: Path,
    seed: int = 0,
    n_layers: int = 3,
    n_experts: int = 16,
    languages=None,
    labels: bool = True,
    **structure,
) -> Path:
    profile = make_profile(
        languages, n_layers=n_layers, n_experts=n_experts, seed=seed, **structure
    )
    save_profile(folder, profile)
    if labels:
        artifacts.save_artifact(
            folder,
            artifacts.PARTITION,
            {"labels": torch.from_numpy(make_labels(n_layers, 4 * n_experts, n_experts, seed))},
            {"n_experts": n_experts},
            kind="partition",
        )
    return folder


@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    runs = [make_run(root / f"seed{s}", seed=s) for s in range(3)]
    run_analysis(AnalysisConfig(statistics=QUICK), runs[0], seed_runs=runs[1:], figures=False)
    return runs[0]


def test_analysis_writes_tidy_tables_and_a_summary(analysed):
    folder = analysed / artifacts.ANALYSIS_DIR
    for name in (
        "languages",
        "similarity",
        "agreement",
        "groups",
        "experts_per_layer",
        "shared_experts",
        "specific_experts",
        "stability_groups",
        "stability_ari",
    ):
        table = json.loads((folder / f"{name}.json").read_text())
        assert table["schema_version"] == artifacts.SCHEMA_VERSION and table["name"] == name
        with (folder / f"{name}.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == len(table["rows"]) and list(rows[0]) == table["columns"]
    similarity = json.loads((folder / "similarity.json").read_text())["rows"]
    # 6 metrics x (model + 3 layers); 36 unordered pairs, 72 ordered pairs for KL
    assert len(similarity) == 4 * (5 * 36 + 72)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["schema_version"] == artifacts.SCHEMA_VERSION
    head = summary["headline_group"]
    assert head["name"] == "Romance" and head["members"] == ["fr", "es", "pt"]
    assert {"statistic", "ci", "p_value", "min_p", "exact", "p_holm"} <= set(head)
    shared = summary["shared_experts"]
    assert len(shared["per_layer"]) == 3 and 0 <= shared["peak_layer"] < 3
    assert (
        summary["stability"]["n_seeds"] == 3
        and len(summary["stability"]["ari_per_layer_mean"]) == 3
    )
    assert len(summary["stability"]["groups"]["Romance"]["holds"]) == 3
    topics = {f["topic"] for f in summary["findings"]}
    assert {"group: Romance", "shared experts", "stability over seeds"} <= topics


def test_seed_runs_must_match(tmp_path):
    main_run = make_run(tmp_path / "a")
    other = make_run(tmp_path / "b", languages=PAPER_LANGUAGE_INFO[:5])
    with pytest.raises(BabelmoeError, match="does not match"):
        run_analysis(AnalysisConfig(statistics=QUICK), main_run, seed_runs=[other], figures=False)


def test_partition_labels_are_optional_but_checked(tmp_path):
    run = make_run(tmp_path / "r", labels=False)
    assert load_partition_labels(run) is None
    run = make_run(tmp_path / "s")
    assert load_partition_labels(run).shape == (3, 64)
    (run / "partition.safetensors").write_bytes(b"garbage")
    with pytest.raises(BabelmoeError, match="corrupted"):
        load_partition_labels(run)


def test_diff_of_two_profiles(tmp_path):
    a = make_run(tmp_path / "base", seed=0)
    b = make_run(tmp_path / "tuned", seed=1, languages=PAPER_LANGUAGE_INFO[:7])
    out = tmp_path / "tuned" / "diff_vs_base"
    summary = run_diff(
        DiffConfig(top_k=3, statistics=StatisticsConfig(n_bootstrap=30)), out, run_a=a, run_b=b
    )
    assert summary["languages"] == [lang["code"] for lang in PAPER_LANGUAGE_INFO[:7]]
    assert len(summary["mean_abs_delta_per_layer"]) == 3 and summary["same_partition"]
    assert summary["geometry"]["p_value"] <= 1.0
    layers = json.loads((out / "diff_layers.json").read_text())["rows"]
    assert len(layers) == 3 * 8  # 7 languages + "all"
    experts = json.loads((out / "diff_experts.json").read_text())["rows"]
    assert all(r["status"] in {"gained", "lost", "shared", "other"} for r in experts)
    section = json.loads((out / "report_section.json").read_text())
    assert section["title"].startswith("Model diff") and section["figures"]
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 3


def test_diff_refuses_other_shapes_naming_both_sides(tmp_path):
    a = make_run(tmp_path / "small", n_experts=16)
    b = make_run(tmp_path / "large", n_experts=32)
    with pytest.raises(BabelmoeError, match=r"small.*16 experts.*large.*32 experts"):
        run_diff(
            DiffConfig(statistics=StatisticsConfig(n_bootstrap=0)),
            tmp_path / "out",
            run_a=a,
            run_b=b,
        )


def test_cli_analyse_report_and_errors(tmp_path, capsys):
    run = make_run(tmp_path / "run", n_layers=2, n_experts=8)
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(run)])
    assert exit_info.value.code == 2
    assert "babelmoe analyse" in capsys.readouterr().err  # says what to run first
    main(
        [
            "-q",
            "analyse",
            str(run),
            "--bootstrap",
            "20",
            "--permutations",
            "49",
            "--group",
            "Iberian=es,pt",
            "--no-auto-groups",
            "--no-figures",
        ]
    )
    out = capsys.readouterr().out
    assert "Iberian (es, pt)" in out and "babelmoe report" in out
    main(["-q", "report", str(run)])
    assert (run / "report.html").is_file()
    with pytest.raises(SystemExit):
        main(["analyse", str(run), "--group", "oops"])
    assert "bad --group" in capsys.readouterr().err
