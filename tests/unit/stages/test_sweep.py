"""Sweeps: the job plan, in-memory pruning that equals real surgery and leaves the model intact,
verdicts and the specificity matrix, the files written, resuming, and the CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from babelmoe.analysis.sweep import (
    BEATS,
    WITHIN,
    WORSE,
    curves,
    pair_verdicts,
    specificity,
    verdicts,
)
from babelmoe.cli import main
from babelmoe.errors import BabelmoeError
from babelmoe.evaluate import PerplexityConfig, perplexity
from babelmoe.models.ffn import ffns
from babelmoe.prune.surgery import prune_model
from babelmoe.prune.sweep import SweepConfig, job_selection, plan_jobs
from babelmoe.stages import sweep as sweep_module
from babelmoe.stages.sweep import run_jobs, run_sweep
from babelmoe.testing import TEXTS, balanced_partition, make_run, synthetic_profile, tiny_loaded

LANGS = [{"code": "eng", "bcp47": "en"}, {"code": "fra", "bcp47": "fr"}]
SMALL = SweepConfig(methods=("sort", "norm"), ratios=(0.1, 0.25), random_seeds=(0, 1, 2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"methods": ("threshold",)}, "cannot be swept"),
        ({"methods": ("random",)}, "cannot be swept"),
        ({"ratios": (0.1, 1.0)}, r"\[0, 1\)"),
        ({"specificity_method": "adaptive"}, "not among methods"),
        ({"methods": ("norm",), "specificity_method": "sort"}, "not among methods"),
        ({"specificity_ratio": 0.3}, "not among ratios"),
    ],
)
def test_config_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(BabelmoeError, match=message):
        SweepConfig(**kwargs)


def test_plan_dense_random_methods_and_the_matrix() -> None:
    jobs = plan_jobs(SMALL, ["en", "fr"])
    assert jobs[0].method == "dense" and jobs[0].eval_langs == ("en", "fr")
    assert len(jobs) == 1 + 2 * (3 + 2 * 2)
    randoms = [j for j in jobs if j.method == "random"]
    assert len(randoms) == 6 and all(
        j.eval_langs == ("en", "fr") and j.target is None for j in randoms
    )
    matrix = [j for j in jobs if j.method == "sort" and j.ratio == 0.25]  # the middle ratio
    assert all(j.eval_langs == ("en", "fr") for j in matrix)
    others = [j for j in jobs if j.method in ("sort", "norm") and j not in matrix]
    assert all(j.eval_langs == (j.target,) for j in others)
    assert sum(len(j.eval_langs) for j in jobs) == 2 + 12 + 4 + 6


def tiny_setup():
    loaded = tiny_loaded("llama")
    partition = balanced_partition(2, 64, 8)
    freq = torch.rand(2, 2, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    profile = synthetic_profile(freq, partition, LANGS, ["en", "fr"])
    return loaded, partition, profile


def ppl(model, tokenizer, texts: list[str]) -> float:
    return perplexity(model, tokenizer, texts, PerplexityConfig(max_length=1024, batch_size=4)).ppl


def test_in_memory_pruning_equals_surgery_and_restores_the_model() -> None:
    loaded, partition, profile = tiny_setup()
    before = [p.detach().clone() for p in loaded.model.parameters()]
    pristine = copy.deepcopy(loaded.model)
    rows = run_jobs(loaded, partition, profile, TEXTS, SMALL)
    assert len(rows) == 24
    assert all(torch.equal(a, b) for a, b in zip(before, loaded.model.parameters(), strict=True))
    assert all(f.width == 64 for f in ffns(loaded.model))
    dense = next(r for r in rows if r["method"] == "dense" and r["eval_lang"] == "fr")
    assert dense["ppl"] == pytest.approx(ppl(pristine, loaded.tokenizer, TEXTS["fr"]))
    row = next(
        r for r in rows if r["method"] == "sort" and r["ratio"] == 0.1 and r["target"] == "en"
    )
    job = next(
        j
        for j in plan_jobs(SMALL, ["en", "fr"])
        if (j.method, j.ratio, j.target) == ("sort", 0.1, "en")
    )
    prune_model(pristine, partition, job_selection(job, profile).drop)
    assert row["ppl"] == pytest.approx(ppl(pristine, loaded.tokenizer, TEXTS["en"]), rel=1e-6)
    assert row["experts_removed"] == round(0.1 * 16) and row["neuron_rate"] == pytest.approx(
        2 * 8 / 128
    )


def fake_rows() -> list[dict]:
    rows = [
        {
            "method": "dense",
            "ratio": 0.0,
            "seed": None,
            "target": None,
            "eval_lang": lang,
            "ppl": 10.0,
            "neuron_rate": 0.0,
        }
        for lang in ("en", "fr")
    ]
    for ratio in (0.1, 0.25):
        for seed, value in enumerate((20.0, 22.0, 24.0)):
            rows += [
                {
                    "method": "random",
                    "ratio": ratio,
                    "seed": seed,
                    "target": None,
                    "eval_lang": lang,
                    "ppl": value,
                    "neuron_rate": ratio,
                }
                for lang in ("en", "fr")
            ]
        for method, value in (("sort", 15.0), ("norm", 30.0)):
            rows += [
                {
                    "method": method,
                    "ratio": ratio,
                    "seed": 0,
                    "target": a,
                    "eval_lang": b,
                    "ppl": value if a == b else value + 5 * (ratio == 0.25),
                    "neuron_rate": ratio,
                }
                for a in ("en", "fr")
                for b in ("en", "fr")
            ]
    rows.append(
        {**rows[-1], "method": "sort", "ratio": 0.1, "target": "en", "eval_lang": "en", "ppl": 21.0}
    )
    return rows


def test_verdicts_random_spread_and_specificity() -> None:
    rows = fake_rows()
    rows = [
        r
        for r in rows
        if not (
            r["method"] == "sort"
            and r["ratio"] == 0.1
            and r["target"] == "en"
            and r["eval_lang"] == "en"
            and r["ppl"] == 15.0
        )
    ]
    points = curves(rows, SMALL, ["en", "fr"])
    rand = next(
        p
        for p in points
        if p["method"] == "random" and p["eval_lang"] == "en" and p["ratio"] == 0.1
    )
    assert (rand["ppl"], rand["ppl_min"], rand["ppl_max"], rand["n_seeds"]) == (22.0, 20.0, 24.0, 3)
    judged = {
        (v["eval_lang"], v["ratio"], v["method"]): v["verdict"]
        for v in verdicts(points, SMALL, ["en", "fr"])
    }
    assert judged[("fr", 0.1, "sort")] == BEATS
    assert judged[("en", 0.1, "sort")] == WITHIN  # 21 lies inside [20, 24]
    assert judged[("en", 0.25, "norm")] == WORSE
    pairs = {
        (p["eval_lang"], p["ratio"]): p
        for p in pair_verdicts(verdicts(points, SMALL, ["en", "fr"]))
    }
    assert pairs[("fr", 0.1)]["verdict"] == BEATS and pairs[("en", 0.1)]["verdict"] == WITHIN
    assert pairs[("en", 0.25)]["best_method"] == "sort"  # norm is a baseline, not frequency-guided
    matrix = specificity(rows, SMALL, ["en", "fr"])
    assert matrix["ratio"] == 0.25 and matrix["relative_to_dense"][0] == [1.5, 2.0]
    assert matrix["share_diagonal_best"] == 1.0
    # one statistic with babelmoe steer: pruning for A hurts A least -> negative dominance
    assert matrix["diagonal_dominance"] < 0 and matrix["diagonal_dominance_p"] == 0.5


@pytest.fixture()
def run(tmp_path: Path) -> tuple[Path, Path]:
    run_dir, model_dir, _ = make_run(tmp_path)
    return run_dir, model_dir


def test_run_sweep_writes_tables_plots_and_report_section_then_resumes(run, monkeypatch) -> None:
    run_dir, model_dir = run
    from babelmoe.models.loading import ModelSpec, load_model

    loaded = load_model(ModelSpec(source=str(model_dir), device="cpu", dtype="float32"))
    config = SweepConfig(methods=("sort",), ratios=(0.25,), random_seeds=(0, 1), udhr_cont=True)
    path = run_sweep(config, run_dir, model=loaded)
    folder = run_dir / "sweep"
    summary = json.loads(path.read_text())
    assert summary["schema_version"] == 1 and summary["kind"] == "prune_sweep"
    assert len(summary["rows"]) == 2 + 4 + 4  # dense, random x 2 seeds, sort matrix 2 x 2
    assert summary["rows"][0]["udhr_acc"] is not None
    assert {v["verdict"] for v in summary["verdicts"]} <= {BEATS, WITHIN, WORSE}
    assert summary["specificity"]["targets"] == ["en", "fr"]
    header = (folder / "sweep.csv").read_text().splitlines()[0]
    assert header.startswith("method,ratio,seed,target,eval_lang,ppl")
    section = json.loads((folder / "report_section.json").read_text())
    assert {"title", "lead", "details", "figures"} <= set(section)
    assert "<table>" in section["details"][0]["html"]  # the statistics, one click away
    lead = section["lead"]
    assert "random seed in" in lead and section["figures"][0]["caption"].startswith(lead)
    paths = [f["path"] for f in section["figures"]]
    assert {Path(f).suffix for f in paths} == {".png", ".svg"} and len(paths) == 4
    assert all((run_dir / f).is_file() for f in paths) and section["figures"][0]["caption"]

    def no_more(*args, **kwargs):
        raise AssertionError("a finished row was recomputed")

    monkeypatch.setattr(sweep_module, "_measure", no_more)
    run_sweep(config, run_dir, model=loaded)  # every row is already there
    with pytest.raises(BabelmoeError, match="different sweep"):
        run_sweep(
            SweepConfig(methods=("norm",), ratios=(0.25,), random_seeds=(0, 1)),
            run_dir,
            model=loaded,
        )


def test_cli_sweep_and_its_errors(run, capsys) -> None:
    run_dir, model_dir = run
    main(
        [
            "sweep",
            str(run_dir),
            "--model",
            str(model_dir),
            "--methods",
            "sort-per-layer",
            "--ratios",
            "0.25",
            "--random-seeds",
            "0,1",
            "--languages",
            "fr",
            "--no-specificity",
        ]
    )
    summary = json.loads((run_dir / "sweep" / "sweep.json").read_text())
    assert summary["languages"] == ["fr"] and summary["specificity"] is None
    for bad, message in (
        (["--ratios", "0.1,1.2"], "[0, 1)"),
        (["--languages", "de"], "not profiled"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["sweep", str(run_dir), "--model", str(model_dir), "--force", *bad])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
