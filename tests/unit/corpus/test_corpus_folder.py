"""Folder corpora: <lang>.txt and <lang>.jsonl readers, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from babelmoe.corpus import load_corpus, load_folder
from babelmoe.corpus.folder import read_jsonl, read_txt
from babelmoe.errors import BabelmoeError


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_txt_documents_are_blank_line_separated(tmp_path: Path) -> None:
    path = write(tmp_path / "en.txt", "\n\nFirst doc\nsecond line\n  \t\nSecond doc\n\n\n\nThird\n")
    docs = read_txt(path)
    assert [d.text for d in docs] == ["First doc\nsecond line", "Second doc", "Third"]
    assert [d.id for d in docs] == ["en.txt:3", "en.txt:6", "en.txt:10"]


def test_txt_crlf_and_bom(tmp_path: Path) -> None:
    path = write(tmp_path / "fr.txt", "\ufeffUn\r\n\r\nDeux\r\n".encode())
    assert [d.text for d in read_txt(path)] == ["Un", "Deux"]


def test_jsonl_text_and_ids(tmp_path: Path) -> None:
    lines = [{"text": " Hola ", "id": 7}, {"text": "Adiós"}]
    path = write(tmp_path / "es.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    docs = read_jsonl(path)
    assert [(d.id, d.text) for d in docs] == [("7", "Hola"), ("es.jsonl:2", "Adiós")]


@pytest.mark.parametrize(
    ("name", "content", "pattern"),
    [
        ("en.txt", "", r"en\.txt is empty"),
        ("en.txt", " \n\n \n", r"en\.txt is empty"),
        ("en.txt", b"text\nmore\x00\x01binary", r"en\.txt line 2: NUL byte"),
        ("en.txt", b"ok\n\xff\xfe bad", r"en\.txt line 2: not valid UTF-8"),
        ("en.jsonl", '{"text": "a"}\n{"id": 3}\n', r"en\.jsonl line 2: no text"),
        ("en.jsonl", '{"text": "a"}\n{"text": "  "}\n', r"en\.jsonl line 2: no text"),
        ("en.jsonl", '{"text": "a"}\n{"text": 5}\n', r"en\.jsonl line 2: no text"),
        ("en.jsonl", '{"text": "a"}\n\n{oops\n', r"en\.jsonl line 3: invalid JSON"),
        ("en.jsonl", '["text"]\n', r"en\.jsonl line 1: not a JSON object"),
    ],
)
def test_bad_files_are_one_clear_error(
    tmp_path: Path, name: str, content: str | bytes, pattern: str
) -> None:
    write(tmp_path / name, content)
    with pytest.raises(BabelmoeError, match=pattern) as info:
        load_folder(tmp_path)
    assert "\n" not in info.value.one_line()


def test_load_folder_all_sorted_and_selected(tmp_path: Path) -> None:
    write(tmp_path / "fr.txt", "Bonjour le monde.\n\nAu revoir.")
    write(tmp_path / "en.jsonl", json.dumps({"text": "Hello world."}) + "\n")
    write(tmp_path / "notes.md", "ignored")
    write(tmp_path / "zh-Hant.txt", "世界人權宣言。")
    parts = load_folder(tmp_path)
    assert [p.variant for p in parts] == ["en", "fr", "zh-Hant"]
    assert [p.lang.code for p in parts] == ["eng", "fra", "zho"]
    assert parts[2].lang.bcp47 == "zh-Hant" and parts[2].lang.script == "Han"
    assert parts[1].source == str(tmp_path) and len(parts[1].documents) == 2
    picked = load_folder(tmp_path, ["fr", "en"], max_documents=1)
    assert [p.variant for p in picked] == ["fr", "en"]
    assert [len(p.documents) for p in picked] == [1, 1]


def test_load_corpus_folder(tmp_path: Path) -> None:
    write(tmp_path / "hi.txt", "सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता प्राप्त है।")
    corpus = load_corpus(str(tmp_path))
    assert corpus.labels == ["hin"] and corpus.source == str(tmp_path)
    assert corpus[0].lang.script == "Devanagari" and corpus[0].lang.genus == "Indo-Iranian"


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(BabelmoeError, match="no such corpus folder"):
        load_folder(tmp_path / "missing")
    with pytest.raises(BabelmoeError, match=r"no <lang>\.txt"):
        load_folder(tmp_path)
    write(tmp_path / "en.txt", "a")
    with pytest.raises(BabelmoeError, match=r"no de\.txt or de\.jsonl.*available: en"):
        load_folder(tmp_path, ["de"])
    write(tmp_path / "en.jsonl", '{"text": "b"}')
    with pytest.raises(BabelmoeError, match=r"both en\.jsonl and en\.txt"):
        load_folder(tmp_path)


def test_file_name_must_be_a_language_code(tmp_path: Path) -> None:
    write(tmp_path / "english.txt", "Hello.")
    with pytest.raises(BabelmoeError, match=r"english\.txt: the file name is no language code"):
        load_folder(tmp_path)


def test_unknown_source_and_bad_cap(tmp_path: Path) -> None:
    with pytest.raises(BabelmoeError, match="unknown corpus source"):
        load_corpus(str(tmp_path / "nope"), ["en"])
    with pytest.raises(BabelmoeError, match="max_documents must be >= 1"):
        load_corpus(str(tmp_path), ["en"], max_documents=0)
    with pytest.raises(BabelmoeError, match="no languages"):
        load_corpus("udhr", [])


def test_request_by_another_code_of_the_same_language(tmp_path: Path) -> None:
    write(tmp_path / "en.txt", "Hello.")
    write(tmp_path / "zh-Hans.txt", "你好。")
    write(tmp_path / "zh-Hant.txt", "你好。")
    assert [p.variant for p in load_folder(tmp_path, ["eng"])] == ["en"]
    with pytest.raises(BabelmoeError, match=r"no zho\.txt"):
        load_folder(tmp_path, ["zho"])  # two files of that language: ambiguous, not guessed
