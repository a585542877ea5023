"""The common model: held-out split properties, corpus identity and labels."""

from __future__ import annotations

import random

import pytest

from babelmoe.corpus import Corpus, Document, LanguageCorpus, heldout_split, language_info
from babelmoe.errors import BabelmoeError


def docs(n: int, prefix: str = "d") -> list[Document]:
    return [Document(id=f"{prefix}{i}", text=f"text {prefix}{i}") for i in range(n)]


@pytest.mark.parametrize("n", [2, 3, 5, 10, 31, 100])
@pytest.mark.parametrize("frac", [0.01, 0.2, 0.5, 0.99])
def test_split_is_disjoint_covering_and_nonempty(n: int, frac: float) -> None:
    documents = docs(n)
    profile, evaluation = heldout_split(documents, frac, seed=3)
    ids_p, ids_e = {d.id for d in profile}, {d.id for d in evaluation}
    assert not ids_p & ids_e
    assert ids_p | ids_e == {d.id for d in documents}
    assert 1 <= len(evaluation) <= n - 1
    assert len(evaluation) == min(max(round(frac * n), 1), n - 1)
    # both parts keep the input order
    assert profile == [d for d in documents if d.id in ids_p]
    assert evaluation == [d for d in documents if d.id in ids_e]


def test_split_is_deterministic_and_order_independent() -> None:
    documents = docs(31)
    first = heldout_split(documents, 0.2, seed=0)
    assert heldout_split(documents, 0.2, seed=0) == first
    shuffled = documents[:]
    random.Random(1).shuffle(shuffled)
    assert {d.id for d in heldout_split(shuffled, 0.2, seed=0)[1]} == {d.id for d in first[1]}
    assert {d.id for d in heldout_split(documents, 0.2, seed=1)[1]} != {d.id for d in first[1]}


def test_udhr_sized_split_keeps_both_sides() -> None:
    profile, evaluation = heldout_split(docs(31), 0.2)
    assert (len(profile), len(evaluation)) == (25, 6)


def test_split_zero_and_errors() -> None:
    assert heldout_split(docs(1), 0.0) == (docs(1), [])
    with pytest.raises(BabelmoeError, match="language xx has 1 document"):
        heldout_split(docs(1), 0.2, what="language xx")
    with pytest.raises(BabelmoeError, match=r"heldout_frac must be in \[0, 1\)"):
        heldout_split(docs(5), 1.0)
    with pytest.raises(BabelmoeError, match="two documents with id 'd0'"):
        heldout_split(docs(2) + docs(1), 0.5)


def corpus_of(*sizes: int) -> Corpus:
    codes = ["en", "fr", "zh", "ar"]
    return Corpus(
        [
            LanguageCorpus(
                language_info(codes[i]), docs(n, prefix="article-"), "test", variant=codes[i]
            )
            for i, n in enumerate(sizes)
        ],
        "test",
    )


def test_corpus_split_holds_out_the_same_documents_in_parallel_languages() -> None:
    corpus = corpus_of(31, 31, 31)
    prof, ev = corpus.split_heldout(0.2, seed=0)
    assert [len(lc.documents) for lc in prof] == [25, 25, 25]
    held = [[d.id for d in lc.documents] for lc in ev]
    assert held[0] == held[1] == held[2]
    assert prof.split == {"part": "profile", "heldout_frac": 0.2, "seed": 0}
    assert ev.identity()["split"]["part"] == "eval"
    assert prof.identity()["sha256"] != ev.identity()["sha256"] != corpus.identity()["sha256"]
    with pytest.raises(BabelmoeError, match="already one side"):
        prof.split_heldout()
    with pytest.raises(BabelmoeError, match="language fra has 1 document"):
        corpus_of(5, 1).split_heldout()


def test_identity_tracks_text_and_order() -> None:
    a, b = corpus_of(3, 2), corpus_of(3, 2)
    assert a.identity() == b.identity()
    ident = a.identity()
    assert ident["codes"] == ["eng", "fra"] and ident["n_documents"] == [3, 2]
    b[1].documents[0].text += "!"
    assert b.identity()["sha256"] != ident["sha256"]
    reordered = Corpus([a[1], a[0]], "test")
    assert reordered.identity()["sha256"] != ident["sha256"]


def test_labels_use_variants_only_on_collision() -> None:
    zh1 = LanguageCorpus(language_info("cmn"), docs(2), "udhr", variant="cmn_hans")
    zh2 = LanguageCorpus(language_info("cmn"), docs(2), "udhr", variant="cmn_hant")
    en = LanguageCorpus(language_info("en"), docs(2), "udhr", variant="eng")
    assert Corpus([zh1, zh2, en], "udhr").labels == ["cmn_hans", "cmn_hant", "eng"]
    assert Corpus([zh1, en], "udhr").labels == ["cmn", "eng"]
    with pytest.raises(BabelmoeError, match="eng twice"):
        Corpus([en, en], "udhr")
