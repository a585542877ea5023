"""lm-evaluation-harness path on the real default model (Gemma 3 270M) against babelmoe's own
scoring: the same per-item predictions as ``score_multiple_choice`` for multiple choice (X-CSQA
format and UDHR-Cont from the real UDHR), and for MGSM the generated texts of plain one-prompt
greedy decoding and ``extract_last_number``'s answers (the removed hand-written MGSM runner gave
the same: commit 7873cd8).

No X-CSQA or MGSM data can be had offline: the items below are written here in the published
formats; what is compared is the scoring path, not the benchmark."""

from __future__ import annotations

import json

import pytest

from babelmoe.evaluate import MultipleChoiceConfig, read_xcsqa, score_multiple_choice, xcsqa_items
from babelmoe.evaluate.answers import as_json_number, extract_last_number
from babelmoe.evaluate.harness import HarnessConfig, harness_lm, harness_tokenizer, run_harness
from babelmoe.evaluate.harness_tasks import (
    write_mgsm_task,
    write_udhr_cont_task,
    write_xcsqa_task,
)
from babelmoe.evaluate.harness_tasks.functions import NO_NUMBER
from babelmoe.evaluate.tasks import mgsm
from babelmoe.evaluate.tasks.udhr_continuation import (
    UDHRContConfig,
    build_udhr_continuation_items,
    evaluate_udhr_continuation,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
pytest.importorskip("lm_eval")

QUESTIONS = {
    "en": [
        ("Where do people usually keep milk cold?", ["fridge", "oven", "garden", "roof"], "A"),
        ("What do you use to cut paper?", ["spoon", "scissors", "pillow", "cup"], "B"),
        ("What falls from clouds when it rains?", ["sand", "water", "bread", "glass"], "B"),
        ("Where does a fish live?", ["tree", "desert", "river", "attic"], "C"),
        ("What do you wear on your feet?", ["hat", "gloves", "scarf", "shoes"], "D"),
        ("What do bees make?", ["honey", "milk", "silk", "wool"], "A"),
    ],
    "fr": [
        ("Où garde-t-on le lait au frais ?", ["réfrigérateur", "four", "jardin", "toit"], "A"),
        ("Avec quoi coupe-t-on le papier ?", ["cuillère", "ciseaux", "oreiller", "tasse"], "B"),
        ("Où vit un poisson ?", ["arbre", "désert", "rivière", "grenier"], "C"),
        ("Que fabriquent les abeilles ?", ["miel", "lait", "soie", "laine"], "A"),
    ],
}
PROBLEMS = {
    "en": [
        ("Tom has 3 apples and buys 4 more. How many apples does he have?", 7),
        ("A box holds 6 eggs. How many eggs are in 2 boxes?", 12),
        ("Sara had 10 sweets and ate 3. How many are left?", 7),
    ],
    "fr": [
        ("Paul a 5 billes et en gagne 2. Combien de billes a-t-il ?", 7),
        ("Une table a 4 pieds. Combien de pieds ont 3 tables ?", 12),
    ],
}
SHOTS = {
    "en": [("Ann has 2 pens and buys 1. How many pens?", "2 + 1 = 3. The answer is 3.", 3)],
    "fr": [("Léa a 2 stylos et en achète 1. Combien ?", "2 + 1 = 3. La réponse est 3.", 3)],
}


def greedy(model, tokenizer, prompt: str, config: mgsm.MGSMConfig, lang: str) -> str:
    """Reference decoding: one prompt (BOS first), plain greedy ``generate``, cut at the stops."""
    import torch

    from babelmoe.evaluate import encode

    ids = torch.tensor([encode(tokenizer, prompt)])
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=config.budget,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    text = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    cuts = [i for i in (text.find(s) for s in config.stop_strings(lang)) if i >= 0]
    return text[: min(cuts, default=len(text))]


@pytest.fixture(scope="module")
def lm(default_model):
    return harness_lm(
        default_model.model, default_model.tokenizer, HarnessConfig(tasks=("x",), batch_size=4)
    )


def test_default_tokenizer_is_given_to_the_harness_as_is(default_model):
    # transformers 5 reads Gemma's tokenizer with BOS on: lm_eval --model hf sees the same tokens
    tokenizer = default_model.tokenizer
    assert harness_tokenizer(tokenizer) is tokenizer


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_xcsqa_same_predictions(default_model, lm, tmp_path, lang):
    model, tokenizer = default_model.model, default_model.tokenizer
    rows = [
        {
            "id": f"{lang}-{i}",
            "lang": lang,
            "question": {
                "stem": stem,
                "choices": [{"label": lab, "text": t} for lab, t in zip("ABCD", cs, strict=True)],
            },
            "answerKey": key,
        }
        for i, (stem, cs, key) in enumerate(QUESTIONS[lang])
    ]
    path = tmp_path / lang / "dev.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    ours = score_multiple_choice(
        model, tokenizer, xcsqa_items(read_xcsqa(path)), MultipleChoiceConfig(4)
    ).to_task_result("xcsqa", lang)
    task = write_xcsqa_task(tmp_path / "tasks", path, lang)
    (theirs,) = run_harness(
        model, tokenizer, HarnessConfig(tasks=(str(task.path),)), lm=lm
    ).task_results()
    assert [r.prediction for r in theirs.records] == [r.prediction for r in ours.records]
    for a, b in zip(ours.records, theirs.records, strict=True):
        assert b.scores["loglikelihoods"] == pytest.approx(a.scores["loglikelihoods"], abs=1e-3)
    assert theirs.metrics["acc"] == pytest.approx(ours.metrics["acc"])
    assert theirs.metrics["acc_norm"] == pytest.approx(ours.metrics["acc_norm"])
    assert ours.metrics["acc"] >= 0.5  # a real model gets most of these easy ones


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_mgsm_same_outputs_and_answers(default_model, lm, tmp_path, lang):
    model, tokenizer = default_model.model, default_model.tokenizer
    problems = [
        mgsm.MGSMProblem(f"{lang}-{i + 1}", q, float(a)) for i, (q, a) in enumerate(PROBLEMS[lang])
    ]
    shots = [mgsm.MGSMExemplar(q, r, float(a)) for q, r, a in SHOTS[lang]]
    config = mgsm.MGSMConfig(mode="cot", n_shots=1, max_new_tokens=40)
    task = write_mgsm_task(tmp_path, problems, lang, config, shots)
    (theirs,) = run_harness(
        model, tokenizer, HarnessConfig(tasks=(str(task.path),)), lm=lm
    ).task_results()
    outputs = [
        greedy(model, tokenizer, mgsm.mgsm_prompt(p.question, lang, "cot", shots), config, lang)
        for p in problems
    ]
    assert [r.scores["output"] for r in theirs.records] == outputs
    values = [extract_last_number(o) for o in outputs]
    expected = [NO_NUMBER if v is None else str(as_json_number(v)) for v in values]
    assert [r.prediction for r in theirs.records] == expected
    assert any(v is not None for v in values)  # real numbers were extracted


def test_udhr_cont_same_predictions(default_model, lm, tmp_path):
    from babelmoe.corpus import load_corpus

    model, tokenizer = default_model.model, default_model.tokenizer
    docs = [d.text for d in load_corpus("udhr", ["fr"]).languages[0].documents[:8]]
    config = UDHRContConfig(segment="sentence", max_items=6)
    ours = evaluate_udhr_continuation(
        model, tokenizer, docs, "fr", config, MultipleChoiceConfig(batch_size=4)
    )
    task = write_udhr_cont_task(tmp_path, build_udhr_continuation_items(docs, "fr", config), "fr")
    (theirs,) = run_harness(
        model, tokenizer, HarnessConfig(tasks=(str(task.path),)), lm=lm
    ).task_results()
    assert [r.prediction for r in theirs.records] == [r.prediction for r in ours.records]
    assert theirs.metrics["acc"] == pytest.approx(ours.metrics["acc"])
