"""The covariates stage on a tiny random model and a tiny parallel corpus."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from babelmoe import artifacts
from babelmoe.analysis.covariates import load_covariates
from babelmoe.errors import BabelmoeError
from babelmoe.stages.covariates import CovariatesConfig, run_covariates
from tests.cli_helpers import SPLIT_ARGS, built, run_cli, tiny_checkpoint

TEXTS = {
    "en": ["All human beings are born free", "Everyone has the right to life", "No one shall be"],
    "fr": ["Tous les êtres humains naissent", "Tout individu a droit à la vie", "Nul ne sera"],
    "ru": ["Все люди рождаются свободными", "Каждый человек имеет право", "Никто не должен"],
}


def _corpus(folder: Path) -> None:
    for lang, docs in TEXTS.items():
        lines = [{"id": f"article-{i}", "text": t * (i + 2)} for i, t in enumerate(docs * 2)]
        for k, line in enumerate(lines):
            line["id"] = f"article-{k}"
        (folder / f"{lang}.jsonl").write_text(
            "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8"
        )


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path]:
    model = tiny_checkpoint(tmp_path_factory)
    corpus = built("parallel-corpus", tmp_path_factory, _corpus)

    def build(folder: Path) -> None:
        profile = ["--languages", "en,fr,ru", "--budget", "400", "--units", "2", "--no-compile"]
        for argv in (
            ["split", "--model", model, "--out", folder, *SPLIT_ARGS],
            ["profile", folder, "--model", model, "--corpus", corpus, *profile],
        ):
            result = run_cli(argv)
            assert result.code == 0, result.stderr

    return built("covariates-run", tmp_path_factory, build), model


def test_the_stage_writes_the_artifact_and_keeps_an_identical_one(run, tmp_path):
    source, _ = run
    folder = tmp_path / "run"
    shutil.copytree(source, folder)
    path = run_covariates(CovariatesConfig(heldout_tokens=64), folder)
    cov = load_covariates(folder)
    assert cov is not None and cov.languages == ["eng", "fra", "rus"]
    assert cov.notes == [] or all("geography" in n for n in cov.notes)
    for name in ("fertility", "familiarity", "token_overlap", "script", "genealogy"):
        matrix = cov.distances[name]
        assert np.isfinite(matrix).all() and (np.diag(matrix) == 0).all()
    # the byte tokenizer: one token per UTF-8 byte of the parallel articles
    np.testing.assert_allclose(cov.features["tokens_per_byte"], 1.0)
    # a parallel corpus: fertility compares the tokens of the same articles
    assert "same profiled documents" in cov.sources["fertility"]
    assert cov.distances["fertility"][0, 2] > 0
    assert "same held-out documents" in cov.sources["familiarity"]
    assert (cov.features["heldout_bits"] > 0).all()
    assert (cov.features["bits_per_byte"] > 0).all()
    assert (cov.features["parallel_bytes"] > 0).all()
    # Russian shares no byte token with English (Cyrillic is two bytes, none ASCII)...
    overlap = cov.distances["token_overlap"]
    assert overlap[0, 2] > overlap[0, 1]
    # ... and its script is nearer to Latin than no common ancestor
    assert 0 < cov.distances["script"][0, 2] < 1
    table = (folder / "covariates" / "languages.csv").read_text().splitlines()
    assert table[0].startswith("language,family,genus,script,tokens_per_byte,bits_per_byte")
    assert [row.split(",")[0] for row in table[1:]] == ["eng", "fra", "rus"]
    from babelmoe.stages.report import load_hook_sections

    (section,) = [x for x in load_hook_sections(folder) if x.title.startswith("Covariates")]
    shown = section.html + "".join(body for _, body in section.details)  # details collapse
    assert "token_overlap" in shown and "rus" in shown
    # a second run keeps the artifact as it is
    before = path.read_bytes()
    assert run_covariates(CovariatesConfig(heldout_tokens=64), folder) == path
    assert path.read_bytes() == before
    # other settings: refused without force, replaced with it
    with pytest.raises(BabelmoeError, match="different covariates artifact"):
        run_covariates(CovariatesConfig(heldout_tokens=32), folder)
    run_covariates(CovariatesConfig(heldout_tokens=32), folder, force=True)
    assert (
        artifacts.load_meta(folder / "covariates", "covariates", "covariates")["covariates_config"][
            "heldout_tokens"
        ]
        == 32
    )


def test_without_a_model_only_metadata_covariates_are_written(run, tmp_path):
    source, _ = run
    folder = tmp_path / "run"
    shutil.copytree(source, folder)
    run_covariates(None, folder, load=False)
    cov = load_covariates(folder)
    assert cov is not None
    assert {"script", "script_letters", "script_binary", "genealogy", "genealogy_lineage"} <= set(
        cov.distances
    )
    assert "fertility" not in cov.distances and "familiarity" not in cov.distances
    assert np.isnan(cov.features["bits_per_byte"]).all()
    assert any("no model given" in note for note in cov.notes)
    # the model at hand later: the metadata-only artifact is replaced without --force
    run_covariates(CovariatesConfig(heldout_tokens=16), folder)
    cov = load_covariates(folder)
    assert "familiarity" in cov.distances and not np.isnan(cov.features["bits_per_byte"]).any()


@pytest.mark.slow
def test_babelmoe_run_writes_the_covariates_after_the_profile(tmp_path_factory, tmp_path):
    model = tiny_checkpoint(tmp_path_factory)
    corpus = built("parallel-corpus", tmp_path_factory, _corpus)
    out = tmp_path / "run"
    argv = ["run", "--out", out, "--model", model, "--corpus", corpus, "--languages",
            "en,fr,ru", "--experts", "4", "--device", "cpu"]  # fmt: skip
    result = run_cli(argv)
    assert result.code == 0, result.stderr
    cov = load_covariates(out)
    assert cov is not None and "familiarity" in cov.distances and "fertility" in cov.distances


def test_heldout_selection_reads_the_same_documents_in_every_language():
    from babelmoe.corpus import Document
    from babelmoe.stages.covariates import heldout_selection
    from babelmoe.testing import byte_tokenizer

    tokenizer = byte_tokenizer()  # one token per byte
    a = [Document(f"d{i}", "x" * 10) for i in range(5)]
    b = [Document(f"d{i}", "y" * 30) for i in range(5)]
    c = [Document(f"d{i}", "z" * 20) for i in (4, 3, 2, 1)]  # d0 missing, another order
    texts, parallel = heldout_selection([a, b, c], tokenizer, cap=35)
    # common ids in a's order: d1..d4; the median language (20 tokens each) reaches 35 with 2
    assert parallel and [len(t) for t in texts] == [2, 2, 2]
    assert texts[0] == ["x" * 10] * 2 and texts[2] == ["z" * 20] * 2
    texts, parallel = heldout_selection([a, [Document("e", "w" * 50)]], tokenizer, cap=15)
    assert not parallel and texts == [["x" * 10] * 2, ["w" * 50]]


def test_analyse_writes_missing_covariates_and_names_its_references(run, tmp_path):
    source, _ = run
    folder = tmp_path / "run"
    shutil.copytree(source, folder)
    shutil.rmtree(folder / "covariates", ignore_errors=True)
    args = ["analyse", folder, "--bootstrap", "0", "--permutations", "9", "--no-figures"]
    bad = run_cli([*args, "--script-measure", "letters"])
    assert bad.code == 2 and "unknown script measure 'letters'" in bad.stderr
    assert not (folder / "covariates").exists()
    result = run_cli([*args, "--script-measure", "script_binary"])
    assert result.code == 0, result.stderr
    assert load_covariates(folder) is not None  # made by analyse, with the recorded model
    summary = json.loads((folder / "analysis" / "summary.json").read_text())
    assert summary["references"]["script"]["measure"] == "script_binary"
    assert summary["references"]["genealogy"]["measure"] == "genealogy"
