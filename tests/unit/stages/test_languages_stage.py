"""The stage of ``babelmoe languages``: catalogue, cache, filters, table and files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from babelmoe.errors import BabelmoeError
from babelmoe.stages.languages import LanguagesConfig, format_table, list_languages, write_rows
from babelmoe.testing import byte_tokenizer


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setenv("BABELMOE_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "en.txt").write_text("All are born free.\n\nAnd equal.\n\nIn rights.\n", "utf-8")
    (folder / "ru.txt").write_text("Все люди рождаются.\n\nСвободными.\n", "utf-8")
    (folder / "ja.txt").write_text("すべての人間は、\n\n生まれながらにして自由である。\n", "utf-8")
    tok = tmp_path / "tok"
    byte_tokenizer().save_pretrained(tok)
    return folder, tok


def test_list_filter_and_cache(corpus: tuple[Path, Path]) -> None:
    folder, tok = corpus
    rows = list_languages(LanguagesConfig(corpus=str(folder), model=str(tok)))
    assert [r.request for r in rows] == ["en", "ja", "ru"]
    assert all(r.tokens and r.profile_tokens for r in rows)
    cached = list(Path(corpus[0].parent / "cache" / "catalogue").glob("*.json"))
    assert len(cached) == 1  # the second call reads it
    again = list_languages(LanguagesConfig(corpus=str(folder), model=str(tok), script="Cyrillic"))
    assert [r.request for r in again] == ["ru"]
    family = list_languages(
        LanguagesConfig(corpus=str(folder), model=str(tok), family="Indo-European")
    )
    assert [r.request for r in family] == ["en", "ru"]
    big = list_languages(LanguagesConfig(corpus=str(folder), model=str(tok), min_tokens=10**6))
    assert big == []
    table = format_table(rows)
    assert table.splitlines()[0].split()[:3] == ["request", "code", "name"]
    assert "Latn 100%" in table and len(table.splitlines()) == 2 + len(rows)


def test_files_and_bad_options(corpus: tuple[Path, Path], tmp_path: Path) -> None:
    folder, _ = corpus
    rows = list_languages(LanguagesConfig(corpus=str(folder), model=None))
    assert all(r.tokens is None for r in rows)
    data = json.loads(write_rows(rows, tmp_path / "rows.json").read_text())
    assert data[0]["request"] == "en" and data[0]["script"] == "Latin"
    csv_text = write_rows(rows, tmp_path / "rows.csv").read_text()
    assert csv_text.splitlines()[0].startswith("request,code,bcp47")
    with pytest.raises(BabelmoeError, match="min_tokens needs token counts"):
        LanguagesConfig(corpus=str(folder), model=None, min_tokens=10)


def test_cli_languages_and_study_help(corpus: tuple[Path, Path], tmp_path: Path) -> None:
    from tests.cli_helpers import run_cli

    folder, _ = corpus
    out = tmp_path / "rows.csv"
    result = run_cli(["languages", "--corpus", folder, "--model", "none", "--out", out])
    assert result.code == 0, result.stderr
    assert "3 versions, 2 families" in result.stdout and out.is_file()
    bad = run_cli(["languages", "--corpus", folder, "--model", "none", "--min-tokens", "5"])
    assert bad.code == 2 and "min-tokens" in bad.stderr
    help_text = run_cli(["study", "--help"])
    assert help_text.code == 0 and "babelmoe study --out runs/study50" in help_text.stdout
