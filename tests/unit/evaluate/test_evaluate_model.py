"""Evaluation against a tiny random Llama (float64) and a byte-level tokenizer: no downloads.

Equivalences checked by hand computation with single unbatched forwards.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

from babelmoe.errors import BabelmoeError
from babelmoe.evaluate import (
    MultipleChoiceConfig,
    MultipleChoiceItem,
    PerplexityConfig,
    encode,
    perplexity,
    perplexity_by_language,
    read_xcsqa,
    score_multiple_choice,
    write_task_result,
    xcsqa_items,
)
from babelmoe.evaluate.multiple_choice import (
    MultipleChoiceOutcome,
    MultipleChoiceResult,
    encode_pair,
)
from babelmoe.evaluate.tasks.udhr_continuation import UDHRContConfig, evaluate_udhr_continuation
from babelmoe.testing import byte_tokenizer, tiny_llama

DOCS = [
    "All human beings are born free and equal in dignity and rights.",
    "Tous les êtres humains naissent libres.",
    "人人生而自由，在尊严和权利上一律平等。",
    "Hi",
    "সকল মানুষ স্বাধীনভাবে সমান মর্যাদা এবং অধিকার নিয়ে জন্মগ্রহণ করে।",
]


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    return byte_tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer) -> LlamaForCausalLM:
    return tiny_llama(tokenizer)


def tail_logprob(model, tokens: list[int], n_targets: int) -> float:
    """Sum of log p of the last n_targets tokens, from one unbatched, unpadded forward."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([tokens])).logits[0]  # [T, V]
    logp = logits[:-1].log_softmax(-1).gather(-1, torch.tensor(tokens[1:])[:, None])[:, 0]
    return float(logp[len(tokens) - 1 - n_targets :].sum())


# --- encoding ------------------------------------------------------------------------------


def test_encode_prepends_bos_once(tokenizer):
    ids = encode(tokenizer, "abc")
    assert ids[0] == tokenizer.bos_token_id and tokenizer.bos_token_id not in ids[1:]
    assert encode(tokenizer, "abc", add_bos=False) == ids[1:]
    assert tokenizer.decode(ids[1:]) == "abc"


# --- perplexity ----------------------------------------------------------------------------


def test_perplexity_is_exp_mean_nll_of_single_forwards(model, tokenizer):
    result = perplexity(model, tokenizer, DOCS, PerplexityConfig(max_length=512, batch_size=3))
    nll, count = 0.0, 0
    for doc, per_doc in zip(DOCS, result.documents, strict=True):
        ids = encode(tokenizer, doc)
        doc_nll = -tail_logprob(model, ids, len(ids) - 1)
        assert per_doc.nll_sum == pytest.approx(doc_nll, rel=1e-10)
        assert per_doc.n_tokens == len(ids) - 1 == len(doc.encode())  # BOS never a target
        nll, count = nll + doc_nll, count + len(ids) - 1
    assert result.n_tokens == count
    assert result.ppl == pytest.approx(math.exp(nll / count), rel=1e-10)
    assert result.bits_per_byte == pytest.approx(nll / math.log(2) / result.n_bytes, rel=1e-10)


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_perplexity_independent_of_batch_size_and_padding(model, tokenizer, batch_size):
    reference = perplexity(model, tokenizer, DOCS, PerplexityConfig(max_length=512, batch_size=8))
    result = perplexity(
        model, tokenizer, DOCS, PerplexityConfig(max_length=512, batch_size=batch_size)
    )
    assert result.nll_sum == pytest.approx(reference.nll_sum, rel=1e-10)
    # the short document alone (no padding) scores as it does padded next to long ones
    alone = perplexity(model, tokenizer, [DOCS[3]], PerplexityConfig(max_length=512))
    assert alone.nll_sum == pytest.approx(result.documents[3].nll_sum, rel=1e-10)


def test_windowed_perplexity_matches_hand_windows(model, tokenizer):
    doc = DOCS[0] * 2
    ids = encode(tokenizer, doc)
    config = PerplexityConfig(max_length=16, stride=5, batch_size=4)
    result = perplexity(model, tokenizer, [doc], config)
    expected, end, count = -tail_logprob(model, ids[:16], 15), 16, 15
    while end < len(ids):
        new_end = min(end + 5, len(ids))
        expected -= tail_logprob(model, ids[new_end - 16 : new_end], new_end - end)
        count, end = count + new_end - end, new_end
    assert result.n_tokens == count == len(ids) - 1
    assert result.nll_sum == pytest.approx(expected, rel=1e-10)
    # a window as long as the document is the plain full-context perplexity
    full = perplexity(model, tokenizer, [doc], PerplexityConfig(max_length=len(ids)))
    assert full.nll_sum == pytest.approx(-tail_logprob(model, ids, len(ids) - 1), rel=1e-10)


def test_perplexity_by_language_and_bad_input(model, tokenizer):
    results = perplexity_by_language(model, tokenizer, {"en": DOCS[:1], "zh": DOCS[2:3]})
    assert list(results) == ["en", "zh"] and all(r.ppl > 1 for r in results.values())
    with pytest.raises(BabelmoeError, match="no documents"):
        perplexity(model, tokenizer, [])
    with pytest.raises(BabelmoeError, match="no token to predict"):
        perplexity(model, tokenizer, ["", ""])
    assert math.isnan(perplexity(model, tokenizer, ["", "ab"]).documents[0].ppl)


def test_perplexity_result_is_written_like_a_task(model, tokenizer, tmp_path):
    result = perplexity(model, tokenizer, ["", *DOCS[:2]]).to_task_result("en")
    write_task_result(tmp_path, result)
    summary = json.loads((tmp_path / "perplexity.en.json").read_text("utf-8"))
    assert summary["metrics"]["ppl"] == pytest.approx(result.metrics["ppl"])
    assert summary["config"]["perplexity"]["max_length"] == 2048
    lines = (tmp_path / "perplexity.en.items.jsonl").read_text("utf-8").splitlines()
    assert len(lines) == 3
    assert json.loads(lines[0])["ppl"] is None  # the empty document: NaN -> null


# --- multiple choice -----------------------------------------------------------------------


def test_multiple_choice_equals_hand_computation(model, tokenizer):
    item = MultipleChoiceItem("q1", "Question: 2 + 2 =\nAnswer:", ("4", "five", "二十二"), gold=0)
    result = score_multiple_choice(model, tokenizer, [item], MultipleChoiceConfig(batch_size=2))
    context = encode(tokenizer, item.context)
    for choice, ll in zip(item.choices, result.outcomes[0].loglikelihoods, strict=True):
        continuation = encode(tokenizer, " " + choice, add_bos=False)
        assert ll == pytest.approx(tail_logprob(model, context + continuation, len(continuation)))
    assert result.outcomes[0].choice_chars == (1, 4, 3)
    assert result.outcomes[0].choice_tokens == (2, 5, 10)  # bytes of " 4", " five", " 二十二"


def test_multiple_choice_independent_of_batch_size(model, tokenizer):
    items = [
        MultipleChoiceItem(f"q{i}", DOCS[i][:8], (DOCS[(i + 1) % 5], "x", DOCS[i][8:]), gold=2)
        for i in (0, 1, 2, 4)
    ]
    one = score_multiple_choice(model, tokenizer, items, MultipleChoiceConfig(batch_size=1))
    many = score_multiple_choice(model, tokenizer, items, MultipleChoiceConfig(batch_size=7))
    for a, b in zip(one.outcomes, many.outcomes, strict=True):
        assert a.loglikelihoods == pytest.approx(b.loglikelihoods, rel=1e-10)
    assert one.metrics()["chance"] == pytest.approx(1 / 3)


def test_acc_norm_divides_by_choice_characters():
    # choice 0: -6 over 2 chars = -3/char; choice 1: -8 over 8 chars = -1/char
    won_raw = MultipleChoiceOutcome("a", 0, (-6.0, -8.0), (2, 8), (1, 3))
    won_norm = MultipleChoiceOutcome("b", 1, (-6.0, -8.0), (2, 8), (1, 3))
    tie = MultipleChoiceOutcome("c", 0, (-2.0, -2.0), (1, 1), (1, 1))  # ties go to index 0
    assert (won_raw.prediction, won_raw.prediction_norm) == (0, 1)
    result = MultipleChoiceResult([won_raw, won_norm, tie])
    assert result.acc == pytest.approx(2 / 3) and result.acc_norm == pytest.approx(2 / 3)
    record = won_norm.record()
    assert record.correct is False and record.scores["correct_norm"] is True
    metrics = result.metrics()
    assert metrics["chance"] == 0.5
    assert metrics["acc_stderr"] == pytest.approx(math.sqrt(2 / 9 / 2))


class WithoutLogitsToKeep(torch.nn.Module):
    """A causal LM whose forward does not take ``logits_to_keep`` (full logits path)."""

    def __init__(self, inner: LlamaForCausalLM) -> None:
        super().__init__()
        self.inner = inner

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.inner.get_input_embeddings()

    def forward(self, input_ids, attention_mask):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask)


def test_scores_do_not_depend_on_logits_to_keep(model, tokenizer):
    items = [
        MultipleChoiceItem("a", "Short", ("x", "yy"), gold=0),
        MultipleChoiceItem("b", "A much longer context here", ("z", "a longer choice"), gold=1),
    ]
    kept = score_multiple_choice(model, tokenizer, items, MultipleChoiceConfig(batch_size=4))
    full = score_multiple_choice(WithoutLogitsToKeep(model), tokenizer, items)
    for a, b in zip(kept.outcomes, full.outcomes, strict=True):
        assert a.loglikelihoods == pytest.approx(b.loglikelihoods, rel=1e-10)


def test_context_whitespace_moves_to_the_continuation(tokenizer):
    assert encode_pair(tokenizer, "Answer: ", "x") == encode_pair(tokenizer, "Answer:", " x")


def test_multiple_choice_truncation_keeps_bos_and_choice(model, tokenizer):
    item = MultipleChoiceItem("long", "word " * 40 + "last", ("end", "stop"), gold=0)
    cut = score_multiple_choice(model, tokenizer, [item], MultipleChoiceConfig(max_length=12))
    kept = [tokenizer.bos_token_id, *encode(tokenizer, item.context, add_bos=False)[-7:]]
    continuation = encode(tokenizer, " end", add_bos=False)
    expected = tail_logprob(model, kept + continuation, len(continuation))
    assert cut.outcomes[0].loglikelihoods[0] == pytest.approx(expected, rel=1e-10)


# --- tasks end to end ----------------------------------------------------------------------


def test_xcsqa_end_to_end_and_written_results(model, tokenizer, tmp_path):
    folder = tmp_path / "X-CSQA" / "fr"
    folder.mkdir(parents=True)
    rows = [
        {
            "id": f"fr-{i}",
            "lang": "fr",
            "question": {
                "stem": stem,
                "choices": [
                    {"label": lab, "text": t} for lab, t in zip("ABC", choices, strict=True)
                ],
            },
            "answerKey": key,
        }
        for i, (stem, choices, key) in enumerate(
            [("Où dort le chat ?", ["lit", "mer", "ciel"], "A"), ("2 + 2 ?", ["3", "4", "5"], "B")]
        )
    ]
    (folder / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    questions = read_xcsqa(tmp_path / "X-CSQA", lang="fr", split="dev")
    scored = score_multiple_choice(
        model, tokenizer, xcsqa_items(questions), MultipleChoiceConfig(batch_size=4)
    )
    result = scored.to_task_result("xcsqa", "fr", {"template": "Question: {stem}\nAnswer:"})
    assert result.metrics["n"] == 2
    assert result.metrics["acc"] == sum(r.correct for r in result.records) / 2
    summary_path = write_task_result(tmp_path / "eval", result, meta={"model": "tiny"})
    summary = json.loads(summary_path.read_text("utf-8"))
    assert summary["task"] == "xcsqa" and summary["meta"] == {"model": "tiny"}
    assert summary["config"]["template"] == "Question: {stem}\nAnswer:"
    lines = (tmp_path / "eval" / summary["items_file"]).read_text("utf-8").splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 2 and first["id"] == "fr-0" and len(first["loglikelihoods"]) == 3


def test_udhr_continuation_end_to_end(model, tokenizer):
    docs = [f"Article {i}. " + " ".join(f"word{i}{j}" for j in range(8 + i)) for i in range(6)]
    result = evaluate_udhr_continuation(model, tokenizer, docs, "xx", UDHRContConfig(n_choices=3))
    assert result.task == "udhr-cont" and result.metrics["n"] == 6
    assert result.metrics["chance"] == pytest.approx(1 / 3)
