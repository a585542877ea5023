"""The language-label null of shared and specific experts, the article alignment of bootstrap units,
and the paired (article) bootstrap: constructed profiles with planted experts, no model."""

from __future__ import annotations

import numpy as np
import pytest

from babelmoe.analysis import label_null as ln
from babelmoe.analysis.config import StatisticsConfig
from babelmoe.analysis.stats.bootstrap import unit_weights
from babelmoe.analysis.units import resolve_paired, unit_articles

N_LANG, N_ART, N_LAYERS, N_EXPERTS = 6, 8, 2, 8
SPECIFIC = (0, 3)  # (layer, expert) planted as specific to language 0
AGNOSTIC = (1, 5)  # frequent in every document, whatever its language


def planted(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit_counts [n, U, L, E], unit_tokens [n, U], articles [n, U]): a parallel corpus.

    Tokens per article differ by language (fertility); language 5 lacks article 0 (no preamble)
    and its units are shifted by one, so positions do not align but articles do."""
    rng = np.random.default_rng(seed)
    n_units = N_ART
    tokens = np.zeros((N_LANG, n_units), dtype=np.int64)
    articles = np.full((N_LANG, n_units), -1, dtype=np.int64)
    rate = np.full((N_LANG, N_ART, N_LAYERS, N_EXPERTS), 0.004)
    article_level = rng.uniform(0.25, 0.55, N_ART)  # the agnostic expert follows the article
    rate[:, :, AGNOSTIC[0], AGNOSTIC[1]] = article_level[None, :]
    rate[:, :, SPECIFIC[0], SPECIFIC[1]] = 0.002
    rate[0, :, SPECIFIC[0], SPECIFIC[1]] = 0.3
    counts = np.zeros((N_LANG, n_units, N_LAYERS, N_EXPERTS), dtype=np.int64)
    for i in range(N_LANG):
        present = range(1, N_ART) if i == N_LANG - 1 else range(N_ART)
        for u, a in enumerate(present):
            t = int(200 * (1 + i / 3))
            tokens[i, u] = t
            articles[i, u] = a
            counts[i, u] = rng.binomial(t, rate[i, a])
    return counts, tokens, articles


def test_label_null_detects_a_planted_specific_expert_and_not_an_agnostic_one() -> None:
    counts, tokens, articles = planted()
    cfg = ln.LabelNullConfig(statistics=StatisticsConfig(label_permutations=499, seed=1))
    result = ln.label_null(counts, tokens, articles, cfg)
    assert result.strata == "article"
    assert result.specific_language[SPECIFIC] == 0  # the threshold rule flags it ...
    assert result.language_p[(0, *SPECIFIC)] < 0.01  # ... and the label null confirms it
    assert result.dependent[SPECIFIC]
    assert result.specific_confirmed[SPECIFIC[0]] == 1
    # The agnostic expert: shared (frequent everywhere), never specific, no language dependence.
    assert result.shared_mask[AGNOSTIC] and result.specific_language[AGNOSTIC] == -1
    assert not result.dependent[AGNOSTIC]
    assert result.dispersion_p[AGNOSTIC] > 0.05
    assert result.shared_agnostic[AGNOSTIC[0]] == 1
    # Under the null the agnostic expert stays shared: no excess of sharing over random labels.
    assert result.null_mean("shared")[AGNOSTIC[0]] == pytest.approx(1.0)
    assert result.layer_p("shared")[AGNOSTIC[0]] == 1.0
    # and the planted specific expert disappears under permuted labels.
    assert result.null_mean("specific")[SPECIFIC[0]] < 0.2
    assert result.layer_p("specific")[SPECIFIC[0]] < 0.01


def test_label_null_observed_frequencies_and_dispersion_match_a_direct_computation() -> None:
    counts, tokens, articles = planted(seed=3)
    result = ln.label_null(
        counts,
        tokens,
        articles,
        ln.LabelNullConfig(statistics=StatisticsConfig(label_permutations=19)),
    )
    freq = counts.sum(1) / tokens.sum(1)[:, None, None]
    np.testing.assert_allclose(result.frequency, freq)
    # the identity permutation ties with itself, so no p-value is below 1 / (draws + 1)
    assert result.dispersion_p.min() >= 1 / 20 and result.language_p.min() >= 1 / 20


def test_permutations_keep_each_languages_units_and_articles() -> None:
    _, tokens, articles = planted()
    lang, _, stratum, used = ln.permutation_strata(tokens, articles, "article")
    assert used == "article"
    perm = ln.draw_permutations(np.random.default_rng(0), stratum, 50)
    for row in perm:
        assert sorted(row) == list(range(lang.size))  # a permutation of the cells
        np.testing.assert_array_equal(stratum[row], stratum)  # within articles
        moved = lang[row] != lang
        assert moved.any()
    for i in range(N_LANG):  # every language keeps its number of units and its articles
        slots = lang == i
        for row in perm:
            assert sorted(stratum[row[slots]]) == sorted(stratum[slots])
    # Without an alignment: one stratum, each language keeps its number of units.
    lang_n, _, stratum_n, used_n = ln.permutation_strata(tokens, None, "auto")
    assert used_n == "none" and (stratum_n == 0).all()
    perm = ln.draw_permutations(np.random.default_rng(1), stratum_n, 20)
    assert all(sorted(row) == list(range(lang_n.size)) for row in perm)
    assert np.bincount(lang_n).tolist() == (tokens > 0).sum(1).tolist()


def test_benjamini_hochberg_matches_a_direct_computation() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.5, np.nan])
    adjusted = ln.benjamini_hochberg(p)
    # sorted 0.01, 0.03, 0.04, 0.5 -> 0.04, 0.0533, 0.0533, 0.5
    np.testing.assert_allclose(adjusted[:4], [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    assert np.isnan(adjusted[4])


def test_paired_resampling_draws_the_same_articles_in_every_language() -> None:
    _, tokens, articles = planted()
    weights = unit_weights(np.random.default_rng(0), tokens, 200, True, articles)  # [B, n, U]
    for a in range(N_ART):
        cells = np.argwhere(articles == a)
        values = weights[:, cells[:, 0], cells[:, 1]]  # [B, languages holding a]
        np.testing.assert_array_equal(values, values[:, :1].repeat(values.shape[1], axis=1))
    assert (weights[:, tokens == 0] == 0).all()
    assert (weights.sum(axis=2) > 0).all()  # no language is ever left without tokens
    # the weights are a Bayesian bootstrap over the articles: they sum to the number of articles
    np.testing.assert_allclose(weights[:, 0].sum(axis=1), N_ART)
    # pairing by position would pair language 5's article 1 with the others' article 0
    positional = unit_weights(np.random.default_rng(0), tokens, 5, True)
    assert (positional[:, 0, 0] == positional[:, 5, 0]).all()
    assert articles[0, 0] != articles[5, 0]


def test_unit_articles_from_recorded_document_ids_and_the_paired_default() -> None:
    tokens = np.array([[5, 5, 0], [5, 5, 5]])
    documents = [
        [["preamble"], ["article-1"], []],
        [["article-1", "article-4"], ["article-2"], ["preamble"]],
    ]
    art = unit_articles(documents, tokens)
    assert art is not None and art.names == ["preamble", "article-1", "article-2"]
    np.testing.assert_array_equal(art.index, [[0, 1, -1], [1, 2, 0]])
    assert art.parallel and resolve_paired(None, art)
    alone = unit_articles(
        [[["a.txt:0"], ["a.txt:1"], []], [["b.txt:0"], ["b.txt:1"], ["b:2"]]], tokens
    )
    assert alone is not None and not alone.parallel and not resolve_paired(None, alone)
    assert not resolve_paired(None, None) and resolve_paired(True, None)
    assert unit_articles(documents, np.ones((3, 3))) is None  # shape mismatch: no alignment


@pytest.mark.slow
def test_label_null_speed_at_the_studys_shape() -> None:
    """69 languages x 18 layers x 256 experts, ~700 cells, 999 permutations: well under a minute
    (about 10 s on one loaded core when measured)."""
    import time

    rng = np.random.default_rng(0)
    n, units, layers, experts = 69, 32, 18, 256
    tokens = np.zeros((n, units), dtype=np.int64)
    for i, k in enumerate(rng.integers(4, 25, size=n)):
        tokens[i, :k] = rng.integers(40, 120, size=k)
    counts = rng.binomial(tokens[:, :, None, None], rng.beta(0.5, 5, (layers, experts)))
    articles = np.where(tokens > 0, np.arange(units)[None, :], -1)
    began = time.perf_counter()
    ln.label_null(
        counts,
        tokens,
        articles,
        ln.LabelNullConfig(statistics=StatisticsConfig(label_permutations=999)),
    )
    assert time.perf_counter() - began < 60


def test_the_profile_records_each_units_documents_and_older_profiles_rebuild_them(tmp_path) -> None:
    import json

    import torch

    from babelmoe.corpus import heldout_split, load_corpus
    from babelmoe.profile.artifact import ProfileData
    from babelmoe.stages.profile import ProfileConfig, tokenized_corpus
    from babelmoe.stages.units import ensure_unit_documents
    from babelmoe.testing import byte_tokenizer

    for code, skip in (("en", None), ("fr", 0)):  # French lacks article 0 (no preamble)
        lines = [
            json.dumps({"id": f"article-{j}", "text": f"{code} article {j} " * (3 + j)})
            for j in range(10)
            if j != skip
        ]
        (tmp_path / f"{code}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = ProfileConfig(languages=["en", "fr"], corpus=str(tmp_path), token_budget=300)
    corpus = load_corpus(str(tmp_path), ["en", "fr"])
    ids: list[list[str]] = []
    _, documents, identity = tokenized_corpus(config, byte_tokenizer(), corpus, ids)
    for entry, kept, docs in zip(corpus.languages, ids, documents, strict=True):
        profiled, _ = heldout_split(entry.documents, 0.2, 0)
        assert kept == [d.id for d in profiled][: len(docs)] and len(kept) == len(docs)
        assert len(docs) < len(profiled)  # the budget cut it: ids stop where the tokens stop
    # An older profile (no record): rebuilt from the corpus, the first document of every unit.
    n_units = 4
    unit_tokens = torch.zeros(2, n_units, dtype=torch.long)
    for i, docs in enumerate(documents):
        for j, doc in enumerate(docs):
            unit_tokens[i, j % n_units] += len(doc)
    profile = ProfileData(
        counts=torch.zeros(2, 1, 1, dtype=torch.long),
        tokens=unit_tokens.sum(1),
        score_sums=torch.zeros(2, 1, 1, dtype=torch.float64),
        unit_counts=torch.zeros(2, n_units, 1, 1, dtype=torch.long),
        unit_tokens=unit_tokens,
        languages=[{"code": "eng"}, {"code": "fra"}],
        meta={"config": {"corpus": str(tmp_path), "languages": ["en", "fr"]}, "corpus": identity},
    )
    ensure_unit_documents(profile)
    rebuilt = profile.meta["unit_documents"]
    recorded = [[kept[u::n_units] for u in range(n_units)] for kept in ids]
    assert [[u[:1] for u in row] for row in recorded] == rebuilt
    articles = unit_articles(rebuilt, unit_tokens.numpy())
    assert articles is not None and articles.parallel
