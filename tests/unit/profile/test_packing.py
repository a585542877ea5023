"""Exact packing: several document chunks share a row, each starting with BOS, with position ids
restarting at 0, so the model's packed-sequence mask keeps each chunk attending to itself only.
Packed and unpacked profiles of the same documents then count the same experts.

Measured on the tiny models (3 languages x 40 documents of 1-59 tokens: 3,719 counted tokens,
each selecting 2 of the 2 x 8 experts, 7,438 selections): float64 and float32 give identical
counts for llama, qwen2, gpt2, gpt_neox, gemma3, phi3 and olmo2; in bfloat16 0-5 of 7,438
move (at most 0.07%): different row shapes round differently and flip float ties at the top-10%
cut. Packing
without restarting positions (documents seeing each other, the old behaviour) moves 1.8% (136).
bloom (ALiBi, no position ids) cannot pack exactly and is refused.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from babelmoe.errors import BabelmoeError
from babelmoe.experts.partition import Partition
from babelmoe.models.ffn import ffns
from babelmoe.profile.batches import Batch, language_sequences, make_batches, pack_rows
from babelmoe.profile.core import Scoring, profile_batches
from babelmoe.testing import tiny_model

BOS = 1


def _partition(model, n_experts: int = 8) -> Partition:
    layers = ffns(model)
    g = torch.Generator().manual_seed(1)
    base = torch.arange(layers[0].width) % n_experts
    labels = torch.stack([base[torch.randperm(base.numel(), generator=g)] for _ in layers])
    return Partition(labels=labels, n_experts=n_experts, meta={})


def _corpus(seed: int = 0, n_lang: int = 3, n_docs: int = 40) -> list[list[list[int]]]:
    g = torch.Generator().manual_seed(seed)
    return [
        [
            torch.randint(3, 120, (n,), generator=g).tolist()
            for n in torch.randint(1, 60, (n_docs,), generator=g).tolist()
        ]
        for _ in range(n_lang)
    ]


def _batches(corpus, packing: bool, max_length: int = 64) -> list[Batch]:
    seqs = [
        s
        for lang, docs in enumerate(corpus)
        for s in language_sequences(docs, lang, 2, BOS, max_length, packing)
    ]
    return make_batches(seqs, None, 0, batch_tokens=512)


def _counts(model, batches, n_lang: int = 3):
    acc = profile_batches(model, _partition(model), batches, n_lang, 2, Scoring(compile=False))
    return acc.counts[:-1], acc.tokens[:-1]  # without the spare row (BOS and padding)


def test_pack_rows_keeps_every_chunk_whole_and_restarts_positions():
    corpus = _corpus()
    chunks = language_sequences(corpus[0], 0, 2, BOS, 16, packing=False)
    rows = pack_rows(chunks, 16)
    assert all(len(r.ids) <= 16 for r in rows)
    assert len(rows) < len(chunks)  # short chunks do share rows
    assert sum(len(r.ids) for r in rows) == sum(len(c.ids) for c in chunks)
    found = []
    for row in rows:
        starts = [i for i, p in enumerate(row.positions) if p == 0] + [len(row.ids)]
        for a, b in itertools.pairwise(starts):
            assert row.ids[a] == BOS and row.groups[a] == -1  # every chunk starts with BOS
            assert list(row.positions[a:b]) == list(range(b - a))
            found.append((row.ids[a:b], row.groups[a:b]))
    assert sorted(found) == sorted((c.ids, c.groups) for c in chunks)  # each chunk once, whole
    assert pack_rows(chunks, 16) == rows  # deterministic


@pytest.mark.parametrize(
    "model_type,dtype",
    [("llama", torch.float32), ("qwen2", torch.float32), ("gpt2", torch.float32)],
)
def test_packed_and_unpacked_profiles_count_the_same(model_type, dtype):
    model = tiny_model(model_type, dtype=dtype)
    corpus = _corpus()
    packed = _batches(corpus, packing=True)
    unpacked = _batches(corpus, packing=False)
    assert sum(b.n_positions for b in packed) < sum(b.n_positions for b in unpacked)
    counts, tokens = _counts(model, unpacked)
    packed_counts, packed_tokens = _counts(model, packed)
    assert torch.equal(packed_tokens, tokens)
    assert torch.equal(packed_counts, counts)


def test_packed_bfloat16_differs_only_at_float_ties_and_needs_the_restarted_positions():
    model = tiny_model("llama", dtype=torch.bfloat16)
    corpus = _corpus()
    counts, _ = _counts(model, _batches(corpus, packing=False))
    packed, _ = _counts(model, _batches(corpus, packing=True))
    selections = int(counts.sum())
    moved = int((packed - counts).abs().sum()) // 2
    assert moved <= 0.002 * selections  # measured: 0 of 7,438
    # control: the same rows without restarted positions let chunks attend to each other
    leaky = [
        Batch(b.input_ids, b.attention_mask, b.group, None) for b in _batches(corpus, packing=True)
    ]
    leaked, _ = _counts(model, leaky)
    assert int((leaked - counts).abs().sum()) // 2 > 0.005 * selections


def test_packing_is_refused_for_a_model_without_position_ids():
    model = tiny_model("bloom")  # ALiBi, no position ids: packed chunks would see each other
    with pytest.raises(BabelmoeError, match="position ids"):
        _counts(model, _batches(_corpus(n_docs=5), packing=True))


def test_batches_fill_a_token_budget_with_rows_of_similar_length():
    seqs = language_sequences(_corpus(n_docs=200)[0], 0, 2, BOS, 64, packing=False)
    batches = make_batches(seqs, None, 0, batch_tokens=512)
    assert all(b.n_positions <= 512 or b.input_ids.shape[0] <= 2 for b in batches)
    widths = [b.input_ids.shape[1] for b in batches]
    assert widths == sorted(widths, reverse=True)  # longest rows first
    assert (
        max(b.input_ids.shape[0] for b in batches) > 2 * batches[0].input_ids.shape[0]
    )  # short: wide
    padding = sum(b.n_padding for b in batches) / sum(b.n_positions for b in batches)
    assert padding < 0.10  # 7.5% here (200 short documents); 1.0% for 2M tokens of bench_cli's mix
    assert sum(b.n_counted for b in batches) == sum(len(d) for d in _corpus(n_docs=200)[0])
    # a lone row would make the compiled layers specialise for a batch of one: padded to two
    lone = make_batches(seqs[:5], 4, 0)
    assert [b.input_ids.shape[0] for b in lone] == [4, 2]
    shortest = min(len(s.ids) for s in seqs[:5])  # sorted longest first: the lone row
    assert lone[1].n_counted == shortest - 1 and lone[1].attention_mask[1].sum() == 0
    assert [b.input_ids.shape[0] for b in make_batches(seqs[:3], 1, 0)] == [1, 1, 1]
