"""UDHR-Cont item construction (no model): determinism, gold positions, distractor sources."""

from __future__ import annotations

import unicodedata

import pytest

from babelmoe.errors import BabelmoeError
from babelmoe.evaluate.tasks.udhr_continuation import (
    UDHRContConfig,
    build_udhr_continuation_items,
    choose_unit,
)

# document i's words are "d{i}w{j}", so every continuation names its document
DOCS = [" ".join(f"d{i}w{j}" for j in range(8 + 3 * i)) for i in range(12)]


def source(continuation: str) -> int:
    return int(continuation.split()[0].split("w")[0][1:])


def test_items_are_deterministic_for_a_seed():
    a = build_udhr_continuation_items(DOCS, "en", UDHRContConfig(seed=1))
    b = build_udhr_continuation_items(DOCS, "en", UDHRContConfig(seed=1))
    c = build_udhr_continuation_items(DOCS, "en", UDHRContConfig(seed=2))
    assert a == b
    assert a != c


def test_gold_is_the_true_second_half_and_its_position_varies():
    items = build_udhr_continuation_items(DOCS, "en", UDHRContConfig(n_choices=4))
    assert len(items) == len(DOCS)
    for item, doc in zip(items, DOCS, strict=True):
        assert item.context + item.delimiter + item.choices[item.gold] == doc
        assert len(item.choices) == 4 and len(set(item.choices)) == 4
    assert len({item.gold for item in items}) > 1


def test_distractors_come_from_other_documents_of_similar_length():
    config = UDHRContConfig(n_choices=3, pool_factor=1)
    for i, item in enumerate(build_udhr_continuation_items(DOCS, "en", config)):
        gold = item.choices[item.gold]
        distractors = [c for k, c in enumerate(item.choices) if k != item.gold]
        assert source(gold) == i
        assert all(source(d) != i for d in distractors)
        # pool_factor=1: the two distractors are the two closest in length (in words)
        n = len(gold.split())
        lengths = [len(doc.split()) - len(doc.split()) // 2 for doc in DOCS]
        closest = sorted(abs(length - n) for j, length in enumerate(lengths) if j != i)
        assert max(abs(len(d.split()) - n) for d in distractors) <= closest[1]


def test_scripts_without_spaces_split_by_characters():
    docs = [
        "人人生而自由，在尊严和权利上一律平等。",
        "他们赋有理性和良心，并应以兄弟关系的精神相对待。",
        "人人有资格享有本宣言所载的一切权利和自由。",
        "人人有权享有生命、自由和人身安全。",
    ]
    assert choose_unit(docs) == "chars"
    items = build_udhr_continuation_items(docs, "zh", UDHRContConfig(n_choices=3))
    for item, doc in zip(items, docs, strict=True):
        assert item.delimiter == ""
        assert item.context + item.choices[item.gold] == doc
        assert abs(len(item.context) - len(item.choices[item.gold])) <= 1


def test_character_split_never_starts_with_a_combining_mark():
    docs = [
        "सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता प्राप्त है।",
        "उन्हें बुद्धि और अन्तरात्मा की देन प्राप्त है।",
        "प्रत्येक व्यक्ति को इस घोषणा में सन्निहित सभी अधिकारों और स्वतन्त्रताओं को प्राप्त करने का हक़ है।",
    ]
    items = build_udhr_continuation_items(docs, "hi", UDHRContConfig(n_choices=2, unit="chars"))
    for item in items:
        for choice in item.choices:
            assert unicodedata.category(choice[0]) not in ("Mn", "Mc", "Me")


def test_sentence_segments_give_more_items():
    docs = [f"{doc}. {doc.replace('w', 'v')}." for doc in DOCS[:5]]
    by_doc = build_udhr_continuation_items(docs, "en", UDHRContConfig())
    by_sentence = build_udhr_continuation_items(docs, "en", UDHRContConfig(segment="sentence"))
    assert len(by_sentence) == 2 * len(by_doc)


def test_bad_input():
    with pytest.raises(BabelmoeError, match="no documents"):
        build_udhr_continuation_items([], "en")
    with pytest.raises(BabelmoeError, match="distractors"):
        build_udhr_continuation_items(DOCS[:2], "en", UDHRContConfig(n_choices=4))
    with pytest.raises(BabelmoeError, match="min_units"):
        build_udhr_continuation_items(["too short", "also short"], "en")
    with pytest.raises(BabelmoeError, match="n_choices"):
        UDHRContConfig(n_choices=1)
