"""Hugging Face sources, through the real ``datasets.load_dataset`` on local files (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from babelmoe.corpus import load_corpus, load_hf
from babelmoe.corpus.hf import parse_hf_source
from babelmoe.errors import BabelmoeError

pytest.importorskip("datasets")


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path


@pytest.fixture
def per_language(tmp_path: Path) -> Path:
    write_jsonl(
        tmp_path / "en.jsonl", [{"text": f"English document {i}.", "id": f"e{i}"} for i in range(5)]
    )
    write_jsonl(
        tmp_path / "fr.jsonl",
        [{"text": "Premier document."}, {"text": "   "}, {"text": "Deuxième document."}],
    )
    return tmp_path


def test_parse_source() -> None:
    assert parse_hf_source("hf:uonlp/CulturaX") == ("uonlp/CulturaX", None)
    assert parse_hf_source("hf:facebook/flores:{lang}_Latn") == ("facebook/flores", "{lang}_Latn")
    with pytest.raises(BabelmoeError):
        parse_hf_source("hf:")


def test_json_builder_with_data_files_template(per_language: Path) -> None:
    corpus = load_corpus(
        "hf:json",
        ["en", "fr"],
        max_documents=3,
        hf_data_files=str(per_language / "{lang}.jsonl"),
    )
    assert corpus.labels == ["eng", "fra"] and corpus.source == "hf:json"
    en, fr = corpus
    assert [d.id for d in en.documents] == ["e0", "e1", "e2"]  # capped at 3
    assert [d.text for d in fr.documents] == [
        "Premier document.",
        "Deuxième document.",
    ]  # blank skipped
    assert fr.documents[1].id == "train:2"
    assert fr.lang.family == "Indo-European" and fr.lang.script == "Latin"


def test_lang_field_filters_one_stream(tmp_path: Path) -> None:
    rows = [{"content": f"text {i}", "lang": "en" if i % 2 else "fr"} for i in range(6)]
    write_jsonl(tmp_path / "mixed.jsonl", rows)
    parts = load_hf(
        "json",
        ["fr", "en"],
        data_files=str(tmp_path / "mixed.jsonl"),
        text_field="content",
        lang_field="lang",
    )
    assert [[d.text for d in p.documents] for p in parts] == [
        ["text 0", "text 2", "text 4"],
        ["text 1", "text 3", "text 5"],
    ]


def test_parquet_data_files_mapping(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"text": ["مرحبا بالعالم", "نص ثان"]}).to_parquet(
        str(tmp_path / "ar.parquet")
    )
    parts = load_hf("parquet", ["ar"], data_files={"ar": str(tmp_path / "ar.parquet")})
    assert len(parts[0].documents) == 2
    assert parts[0].lang.script == "Arabic" and parts[0].lang.direction == "rtl"
    assert parts[0].lang.family == "Afro-Asiatic"


def test_errors(per_language: Path) -> None:
    files = str(per_language / "{lang}.jsonl")
    with pytest.raises(BabelmoeError, match=r"no field 'body' \(fields: text, id\)"):
        load_hf("json", ["en"], data_files=files, text_field="body")
    with pytest.raises(BabelmoeError, match=r"failed|cannot load"):
        load_hf("json", ["de"], data_files=files)  # no de.jsonl
    with pytest.raises(BabelmoeError, match="one config for 2 languages"):
        load_hf("some/dataset", ["en", "fr"], config="all")
    with pytest.raises(BabelmoeError, match="needs languages"):
        load_corpus("hf:json", None)
    with pytest.raises(BabelmoeError, match="data_files has no entry for 'fr'"):
        load_hf("json", ["fr"], data_files={"en": files})


def test_language_with_only_empty_rows(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "en.jsonl", [{"text": ""}, {"text": "  "}])
    with pytest.raises(BabelmoeError, match="language 'en' has no text"):
        load_hf("json", ["en"], data_files=str(tmp_path / "{lang}.jsonl"))
