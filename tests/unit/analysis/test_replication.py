"""The replication check of ``babelmoe study``: verdicts on synthetic claims files, the refusal of
an overlapping second sample, and the study on a tiny random model writing RUN/replication/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from babelmoe.analysis.replication import compare_claims, load_claims, verdict, write_replication
from babelmoe.errors import BabelmoeError
from babelmoe.stages.study import StudyConfig, check_disjoint, share_partition


def claim(cid: str, estimate: float, holds: bool, p: float = 0.01) -> dict:
    return {
        "id": cid,
        "statement": f"statement of {cid}",
        "estimate": estimate,
        "ci_low": estimate - 0.1,
        "ci_high": estimate + 0.1,
        "interval": "95% language bootstrap",
        "p": p,
        "p_adjusted": p * 2,
        "holds": holds,
    }


def write_claims(folder: Path, name: str, claims: list[dict], n: int) -> None:
    target = folder / "family_vs_script"
    target.mkdir(parents=True, exist_ok=True)
    data = {"schema_version": 1, "n_languages": n, "correction": "Holm", "claims": claims}
    (target / name).write_text(json.dumps(data), encoding="utf-8")


def test_verdicts_on_synthetic_claims_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_claims(
        run,
        "claims.json",
        [
            claim("mrm.model.genealogy", 0.3, True),
            claim("mrm.model.script", 0.05, False, 0.4),
            claim("mantel.script", 0.2, True),
            claim("flip", 0.2, True),
            claim("gone", 0.1, False, 0.5),
        ],
        69,
    )
    write_claims(run, "claims_experts.json", [claim("experts.shared.label_null", -0.1, False)], 69)
    second = run / "replication"
    write_claims(
        second,
        "claims.json",
        [
            claim("mrm.model.genealogy", 0.01, False, 0.6),
            claim("mrm.model.script", 0.8, True),
            claim("mantel.script", 0.5, True),
            claim("flip", -0.3, True),
            claim("only.second", 0.3, True),
        ],
        50,
    )
    write_claims(
        second, "claims_experts.json", [claim("experts.shared.label_null", -0.2, False)], 50
    )
    assert set(load_claims(run)) == {
        "mrm.model.genealogy",
        "mrm.model.script",
        "mantel.script",
        "flip",
        "gone",
        "experts.shared.label_null",
    }
    rows = {r["id"]: r for r in write_replication(run)}
    assert rows["mrm.model.genealogy"]["verdict"] == "does not replicate"
    assert rows["mrm.model.script"]["verdict"] == "new in second"
    assert rows["mantel.script"]["verdict"] == "replicates"
    assert rows["flip"]["verdict"] == "does not replicate"  # holds in both, opposite signs
    assert rows["experts.shared.label_null"]["verdict"] == "holds in neither"
    assert rows["gone"]["verdict"] == "first only"
    assert rows["only.second"]["verdict"] == "second only"
    row = rows["mantel.script"]
    assert (row["first_estimate"], row["second_estimate"]) == (0.2, 0.5)
    assert (row["first_n_languages"], row["second_n_languages"]) == (69, 50)
    assert row["first_ci_low"] == pytest.approx(0.1) and row["second_ci_high"] == pytest.approx(0.6)
    assert row["sentence"].startswith("Replicates: mantel.script")
    assert (run / "replication.csv").is_file()
    table = json.loads((run / "replication.json").read_text())
    assert len(table["rows"]) == 7 and "verdict" in table["columns"]
    section = json.loads((second / "report_section.json").read_text())
    assert "does not replicate" in section["html"] and "<table>" in section["html"]


def test_verdict_rules() -> None:
    assert verdict(claim("a", 0.2, True), claim("a", 0.1, True)) == "replicates"
    assert verdict(claim("a", 0.2, True), claim("a", -0.1, True)) == "does not replicate"
    assert verdict(claim("a", 0.2, True), claim("a", 0.1, False)) == "does not replicate"
    assert verdict(claim("a", 0.2, False), claim("a", 0.1, True)) == "new in second"
    assert verdict(claim("a", 0.2, False), claim("a", 0.1, False)) == "holds in neither"
    assert compare_claims({}, {}) == []


def test_a_second_sample_that_overlaps_the_first_by_iso_639_3_is_refused(tmp_path: Path) -> None:
    corpus = str(tmp_path)  # not UDHR: codes are read as ISO 639-1/2/3
    cfg = StudyConfig(
        languages=("en", "fr", "zh", "ar"),
        replication_languages=("de", "eng", "ru", "ja"),
        corpus=corpus,
    )
    with pytest.raises(BabelmoeError) as err:
        check_disjoint(cfg)
    line = err.value.one_line()
    assert "shares 1 language(s) with the first sample by ISO 639-3: eng (eng)" in line
    assert "\n" not in line
    ok = StudyConfig(
        languages=("en", "fr", "zh", "ar"),
        replication_languages=("de", "ru", "ja", "ko"),
        corpus=corpus,
    )
    check_disjoint(ok)
    assert "--replication-languages (fewer than 40: a weak replication): de, ru, ja, ko" in (
        ok.replication_statement()
    )
    assert "select_replication()" in StudyConfig().replication_statement()


def test_the_default_samples_are_disjoint_and_the_refusal_is_one_line_on_the_cli(
    tmp_path: Path,
) -> None:
    from babelmoe.corpus.study import REPLICATION_LANGUAGES, STUDY50_LANGUAGES, overlap
    from babelmoe.corpus.udhr import locate_udhr
    from tests.cli_helpers import run_cli

    if locate_udhr() is None:
        pytest.skip("the udhr package is not installed here")
    assert overlap(STUDY50_LANGUAGES, REPLICATION_LANGUAGES) == []
    result = run_cli(
        ["study", "--out", str(tmp_path / "run"), "--replication-languages", "bg,pt_PT,kk,ky"]
    )
    assert result.code == 2
    errors = [line for line in result.error_lines if "ISO 639-3" in line]
    assert len(errors) == 1 and "por" in errors[0] and "kaz" in errors[0]
    assert not (tmp_path / "run").exists()


def test_share_partition_keeps_an_identical_one_and_refuses_another(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "first" / "replication"
    first.mkdir()
    meta = {"partition_sha256": "abc", "tensors_sha256": "t", "seconds": 1.0}
    (first / "partition.json").write_text(json.dumps(meta))
    (first / "partition.safetensors").write_bytes(b"labels")
    share_partition(first, second)
    assert (second / "partition.safetensors").read_bytes() == b"labels"
    # a separately run split of the same seed: same partition, other timing -> kept
    (second / "partition.json").write_text(json.dumps({**meta, "seconds": 2.0}))
    share_partition(first, second)
    assert json.loads((second / "partition.json").read_text())["seconds"] == 2.0
    (second / "partition.json").write_text(json.dumps({**meta, "partition_sha256": "other"}))
    with pytest.raises(BabelmoeError, match="another partition"):
        share_partition(first, second)
    share_partition(first, second, force=True)
    assert json.loads((second / "partition.json").read_text())["partition_sha256"] == "abc"


SENTENCES = [
    "all human beings are born free and equal in dignity and rights",
    "everyone has the right to life liberty and security of person",
    "no one shall be held in slavery or servitude in any form at all",
    "everyone has the right to recognition everywhere as a person",
    "all are equal before the law and are entitled to protection",
    "everyone has the right to an effective remedy by the tribunals",
    "no one shall be subjected to arbitrary arrest detention or exile",
    "everyone is entitled in full equality to a fair and public hearing",
    "everyone has the right to freedom of movement and residence",
    "everyone has the right to seek and to enjoy asylum from persecution",
]


def parallel_corpus(folder: Path, codes: list[str]) -> Path:
    """``<code>.jsonl`` files of the same ten articles (ids shared: a parallel corpus), each
    language a different letter shift; the first language lacks article 0 (no preamble)."""
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    for k, code in enumerate(codes):
        table = str.maketrans(alphabet, alphabet[k:] + alphabet[:k])
        lines = [
            json.dumps({"id": f"article-{j}", "text": (text.translate(table) + " ") * (1 + k % 3)})
            for j, text in enumerate(SENTENCES)
            if not (k == 0 and j == 0)
        ]
        (folder / f"{code}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.mark.slow
def test_study_on_a_tiny_model_writes_the_replication_run_and_its_verdicts(tmp_path: Path) -> None:
    from babelmoe.models.loading import ModelSpec
    from babelmoe.profile.artifact import load_profile
    from babelmoe.stages.study import run_study
    from babelmoe.testing import save_model_folder, tiny_loaded

    model = save_model_folder(tiny_loaded(), tmp_path / "model")
    first, second = ["en", "fr", "de", "es", "it"], ["fi", "hu", "et", "tr", "nl"]
    corpus = parallel_corpus(tmp_path / "corpus", first + second)
    cfg = StudyConfig(
        languages=tuple(first),
        replication_languages=tuple(second),
        corpus=str(corpus),
        budget=400,
        n_experts=4,
        n_bootstrap=20,
        n_permutations=99,
    )
    out = tmp_path / "run"
    spec = ModelSpec(source=str(model), device="cpu", dtype="float32")
    report = run_study(cfg, out, model=spec)
    assert report == out / "report.html"
    second_dir = out / "replication"
    for folder in (out, second_dir):
        assert (folder / "profile.json").is_file() and (folder / "report.html").is_file()
        assert (folder / "family_vs_script" / "claims_experts.json").is_file()
        assert (folder / "language_null" / "language_null.csv").is_file()
        # both samples get the same covariates, so that their MRM claims are comparable
        assert (folder / "covariates" / "covariates.json").is_file()
    assert len(load_profile(second_dir).codes) == 5
    assert (
        json.loads((second_dir / "partition.json").read_text())["partition_sha256"]
        == (json.loads((out / "partition.json").read_text())["partition_sha256"])
    )
    # the units record their articles: language 0 has no article-0, yet pairs by article
    profile = load_profile(out)
    assert profile.meta["unit_documents"][0][0][0] != profile.meta["unit_documents"][1][0][0]
    summary = json.loads((out / "analysis" / "summary.json").read_text())
    assert any("paired across languages" in note for note in summary["notes"])
    assert summary["language_null"]["strata"] == "article"
    table = json.loads((out / "replication.json").read_text())
    ids = {row["id"] for row in table["rows"]}
    assert "experts.shared.label_null" in ids and "experts.language_dependent" in ids
    assert all(
        row["verdict"]
        in {
            "replicates",
            "does not replicate",
            "new in second",
            "holds in neither",
            "first only",
            "second only",
        }
        for row in table["rows"]
    )
    html_text = report.read_text(encoding="utf-8")
    assert "Replication on a second sample of languages" in html_text
    assert "against permuted language labels" in html_text
    # the same command again keeps every artifact (nothing is profiled again)
    before = (second_dir / "profile.safetensors").stat().st_mtime_ns
    run_study(cfg, out, model=spec)
    assert (second_dir / "profile.safetensors").stat().st_mtime_ns == before
