"""Profiling: the scoring definitions, invariants, and an independent reference implementation."""

from __future__ import annotations

import pytest
import torch

from babelmoe.experts.partition import Partition
from babelmoe.models.ffn import ffns
from babelmoe.profile.accumulate import Accumulator
from babelmoe.profile.batches import budget_documents, language_sequences, make_batches
from babelmoe.profile.core import Scoring, profile_batches
from babelmoe.profile.scoring import select, selected_per_token, zscore
from babelmoe.testing import balanced_partition, tiny_model


def test_zscore_and_global_selection_golden_case():
    # One token, 2 layers x 3 experts. Layer 0 scores 1,2,3 -> z = -1.2247, 0, 1.2247;
    # layer 1 scores 10,10,40 -> z = -0.7071, -0.7071, 1.4142. Top 2 of 6: (1,2) then (0,2).
    scores = torch.tensor([[[1.0, 2.0, 3.0], [10.0, 10.0, 40.0]]])
    z = zscore(scores)
    torch.testing.assert_close(z[0, 0], torch.tensor([-1.2247449, 0.0, 1.2247449]))
    torch.testing.assert_close(z[0, 1], torch.tensor([-0.7071068, -0.7071068, 1.4142135]))
    assert sorted(select(scores, top_frac=2 / 6).flatten().tolist()) == [2, 5]
    # Without the z-score the raw scores decide: 40, then one of the tied 10s of layer 1.
    raw = sorted(select(scores, top_frac=2 / 6, use_zscore=False).flatten().tolist())
    assert raw[1] == 5 and raw[0] in (3, 4)
    # Per layer: one expert per layer (round(0.34 * 3) = 1).
    assert sorted(select(scores, top_frac=0.34, selection="per_layer").flatten().tolist()) == [2, 5]
    assert selected_per_token(18, 256, 0.1, "global") == 461
    assert selected_per_token(18, 256, 0.1, "per_layer") == 18 * 26


def test_accumulator_counts_only_counted_tokens():
    acc = Accumulator(
        2, 1, 2, 3, torch.device("cpu"), top_frac=2 / 6, selection="global", use_zscore=True
    )
    scores = torch.tensor([[[1.0, 2.0, 3.0], [10.0, 10.0, 40.0]]] * 3)
    acc.add_batch(zscore(scores), acc.rows(torch.tensor([0, -1, 1])))
    totals = acc.totals()
    assert totals.unit_tokens.tolist() == [[1], [1]]
    assert totals.unit_counts[0, 0].flatten().tolist() == [0, 0, 1, 0, 0, 1]


def _reference_counts(model, partition, docs, bos, top_frac):
    """Brute force: dense model, scatter h by labels, z-score, top-k; one document at a time."""
    layers = ffns(model)
    counts = torch.zeros(len(docs), partition.n_layers, partition.n_experts, dtype=torch.long)
    captured = {}
    handles = [
        f.down.register_forward_pre_hook(lambda m, a, i=f.layer: captured.__setitem__(i, a[0]))
        for f in layers
    ]
    try:
        for lang, lang_docs in enumerate(docs):
            for doc in lang_docs:
                with torch.no_grad():
                    model(torch.tensor([[bos, *doc]]))
                per_layer = []
                for i in range(partition.n_layers):
                    h = captured[i][0, 1:].double()  # drop BOS
                    sq = torch.zeros(h.shape[0], partition.n_experts, dtype=torch.float64)
                    sq.index_add_(1, partition.labels[i], h**2)
                    per_layer.append(sq.sqrt())
                scores = torch.stack(per_layer, 1)  # [T, L, E]
                z = (scores - scores.mean(-1, keepdim=True)) / scores.std(
                    -1, keepdim=True, correction=0
                )
                k = round(top_frac * partition.n_layers * partition.n_experts)
                top = z.flatten(1).topk(k, dim=-1).indices
                counts[lang].view(-1).index_add_(
                    0, top.flatten(), torch.ones(top.numel(), dtype=torch.long)
                )
    finally:
        for h in handles:
            h.remove()
    return counts


def _docs(seed: int, lengths=(5, 17, 30, 9)) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(3, 120, (n,), generator=g).tolist() for n in lengths]


def _run(model, part, docs, batch_size, max_length=64, packing=False, n_units=2, **scoring):
    seqs = [
        s
        for lang, d in enumerate(docs)
        for s in language_sequences(d, lang, n_units, 1, max_length, packing)
    ]
    acc = profile_batches(
        model, part, make_batches(seqs, batch_size, 0), len(docs), n_units, Scoring(**scoring)
    )
    return acc.totals()


@pytest.mark.parametrize("model_type,n_experts", [("llama", 8), ("gpt2", 5)])
def test_counts_equal_an_independent_reference(model_type, n_experts):
    model = tiny_model(model_type, dtype=torch.float64)
    part = balanced_partition(2, ffns(model)[0].width, n_experts, seed=1)
    docs = [_docs(0), _docs(1, (12, 3))]
    totals = _run(model, part, docs, batch_size=3)
    expected = _reference_counts(model, part, docs, bos=1, top_frac=0.1)
    assert torch.equal(totals.unit_counts.sum(1), expected)
    assert totals.unit_tokens.sum(1).tolist() == [61, 15]


def test_invariants_batch_size_and_other_languages():
    model = tiny_model("llama", dtype=torch.float64)
    part = balanced_partition(2, 64, 8, seed=2)
    en, fr = _docs(3), _docs(4, (40, 8))
    k = selected_per_token(2, 8, 0.1, "global")
    runs = [_run(model, part, [en, fr], batch_size=b) for b in (1, 2, 8)]
    for totals in runs:
        # each counted token selects exactly k experts
        assert torch.equal(totals.unit_counts.sum((1, 2, 3)), totals.unit_tokens.sum(1) * k)
        assert torch.equal(totals.unit_counts, runs[0].unit_counts)
        assert torch.equal(totals.unit_score_sums, runs[0].unit_score_sums)
    alone = _run(model, part, [en], batch_size=2)
    assert torch.equal(alone.unit_counts[0], runs[0].unit_counts[0])


def test_chunking_and_packing_count_every_token_once():
    model = tiny_model("llama", dtype=torch.float64)
    part = balanced_partition(2, 64, 8)
    docs = [_docs(5, (50, 7, 3))]
    for packing in (False, True):
        totals = _run(model, part, docs, batch_size=2, max_length=16, packing=packing)
        assert totals.unit_tokens.sum() == 60
    seqs = language_sequences(docs[0], 0, 2, 1, 16, packing=False)
    assert all(len(s.ids) <= 16 and s.ids[0] == 1 and s.groups[0] == -1 for s in seqs)
    assert budget_documents([[1, 2, 3], [4, 5, 6]], 4) == [[1, 2, 3], [4]]


def test_texts_encode_in_batches_as_one_by_one_and_no_further_than_the_budget():
    from babelmoe.evaluate.encoding import encode, encode_texts
    from babelmoe.testing import byte_tokenizer

    tokenizer = byte_tokenizer()
    texts = ["Alle Menschen", "", "人人生而自由", "é" * 40, "tous les êtres humains", "x"]
    assert list(encode_texts(tokenizer, texts, chunk=4)) == [
        encode(tokenizer, t, add_bos=False) for t in texts
    ]
    calls = []

    def counting(batch, **kwargs):
        calls.append(len(batch))
        return tokenizer(batch, **kwargs)

    counting.bos_token_id = tokenizer.bos_token_id
    lazy = (t for t in encode_texts(counting, texts * 10, chunk=2) if t)
    kept = budget_documents(lazy, 20)  # 13 bytes of the first text, 7 of the third
    assert sum(map(len, kept)) == 20 and calls == [2, 2]  # two calls of 2 texts, no more


@pytest.mark.parametrize("norm", ["l1", "mean", "max"])
def test_other_norms_and_per_layer_selection_keep_the_invariant(norm):
    model = tiny_model("qwen2", dtype=torch.float64)
    part = balanced_partition(2, 64, 8)
    totals = _run(
        model, part, [_docs(6)], batch_size=4, norm=norm, selection="per_layer", zscore=False
    )
    per_layer = totals.unit_counts.sum((0, 1, 3))  # [L]
    assert torch.equal(per_layer, torch.full((2,), int(totals.unit_tokens.sum()) * 1))


def test_nonfinite_activations_stop_with_the_layer_named():
    from babelmoe.errors import BabelmoeError

    model = tiny_model("llama", dtype=torch.float32)
    with torch.no_grad():
        ffns(model)[1].up.weight[0, 0] = float("inf")
    part = Partition(labels=torch.stack([torch.arange(64) % 8] * 2), n_experts=8, meta={})
    with pytest.raises(BabelmoeError, match=r"layer 1.*bfloat16"):
        _run(model, part, [_docs(7)], batch_size=2)


def test_a_partition_made_for_another_model_is_refused():
    from babelmoe.errors import BabelmoeError
    from babelmoe.experts.partition import SplitConfig, check_partition_fits, split_model

    model = tiny_model("llama")
    partition = split_model(model, SplitConfig(n_experts=8))
    check_partition_fits(partition, model)  # its own model: fine
    with pytest.raises(BabelmoeError, match="made for other weights"):
        check_partition_fits(partition, tiny_model("llama", seed=1))
    with pytest.raises(BabelmoeError, match="2 layers x 64 neurons"):
        check_partition_fits(partition, tiny_model("llama", intermediate_size=96))


def test_the_weights_digest_schemes_and_older_partitions():
    """New partitions record the per-layer digest; partitions written with the older one-stream
    digest (no "weights_digest" in their metadata) are still checked, by that digest."""
    from babelmoe.errors import BabelmoeError
    from babelmoe.experts.partition import (
        SplitConfig,
        check_partition_fits,
        split_model,
        weights_sha256,
    )

    model = tiny_model("llama")
    partition = split_model(model, SplitConfig(n_experts=8))
    assert partition.meta["weights_digest"] == "per-layer"
    per_layer, stream = weights_sha256(model, "up"), weights_sha256(model, "up", "stream")
    assert partition.meta["weights_sha256"] == per_layer != stream
    older = Partition(partition.labels, 8, {**partition.meta, "weights_sha256": stream})
    del older.meta["weights_digest"]
    check_partition_fits(older, model)
    with pytest.raises(BabelmoeError, match="made for other weights"):
        check_partition_fits(older, tiny_model("llama", seed=1))
    unknown = Partition(partition.labels, 8, {**partition.meta, "weights_digest": "md5"})
    with pytest.raises(BabelmoeError, match="digest 'md5' is unknown"):
        check_partition_fits(unknown, model)


@pytest.mark.parametrize(
    "sync_every,sync_seconds,calls",
    [(None, 3600.0, [8]), (None, 0.0, [1, 2, 3, 4, 5, 6, 7, 8]), (3, None, [3, 6, 8])],
)
def test_checkpoints_by_time_or_by_batches(sync_every, sync_seconds, calls):
    model = tiny_model("llama")
    part = balanced_partition(2, ffns(model)[0].width, 8, seed=0)
    seqs = [s for lang in range(2) for s in language_sequences(_docs(lang), lang, 2, 1, 64, False)]
    batches = make_batches(seqs, 1, 0)
    assert len(batches) == 8
    seen: list[int] = []
    profile_batches(
        model,
        part,
        batches,
        2,
        2,
        Scoring(),
        sync_every=sync_every,
        sync_seconds=sync_seconds,
        on_sync=lambda next_batch, _: seen.append(next_batch),
    )
    assert seen == calls
