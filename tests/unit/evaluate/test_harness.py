"""lm-evaluation-harness path against babelmoe's own scoring, on the tiny random Llama.

The harness runs the shipped task configs (written for local files) on the same items: per-item
log-likelihoods and predictions must equal babelmoe's multiple choice (``score_multiple_choice``,
which UDHR-Cont keeps), MGSM prompts must be ``mgsm_prompt``'s, generated texts those of plain
one-prompt greedy ``model.generate`` cut at the stop strings, extracted answers
``extract_last_number``'s (the hand-written batched generation and MGSM runner, removed, gave the
same texts: commit 7873cd8), and lm-eval's rolling log-likelihood must equal babelmoe's windowed
perplexity under the windowing correspondence documented in perplexity.py.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformers import LlamaForCausalLM

from babelmoe.errors import BabelmoeError
from babelmoe.evaluate import (
    MultipleChoiceConfig,
    PerplexityConfig,
    encode,
    perplexity,
    read_xcsqa,
    score_multiple_choice,
    xcsqa_items,
)
from babelmoe.evaluate import harness as harness_module
from babelmoe.evaluate.answers import as_json_number, extract_last_number
from babelmoe.evaluate.harness import (
    HarnessConfig,
    harness_lm,
    harness_tokenizer,
    run_harness,
    write_harness_results,
)
from babelmoe.evaluate.harness_tasks import (
    write_mgsm_task,
    write_udhr_cont_task,
    write_xcsqa_task,
)
from babelmoe.evaluate.harness_tasks.functions import NO_NUMBER, last_number
from babelmoe.evaluate.tasks import mgsm
from babelmoe.evaluate.tasks.udhr_continuation import (
    UDHRContConfig,
    build_udhr_continuation_items,
    evaluate_udhr_continuation,
)
from babelmoe.testing import byte_tokenizer, tiny_llama

pytest.importorskip("lm_eval")

XCSQA_ROWS = [
    ("Où dort le chat ?", ["lit", "mer", "ciel"], "A"),
    ("Combien font 2 + 2 ?", ["trois", "quatre", "cinq"], "B"),
    ("De quelle couleur est le ciel ?", ["bleu", "vert", "rouge"], "A"),
    ("人人生而自由，在尊严和权利上？", ["平等", "不同", "无关"], "C"),
]


@pytest.fixture(scope="module")
def tokenizer():
    return byte_tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer) -> LlamaForCausalLM:
    return tiny_llama(tokenizer)


@pytest.fixture(scope="module")
def lm(model, tokenizer):
    """One HFLM for the module (lm-eval's model wrapper is cheap, its import is not)."""
    return harness_lm(model, tokenizer, HarnessConfig(tasks=("x",), batch_size=1))


def greedy(model, tokenizer, prompt: str, budget: int, stop: tuple[str, ...]) -> str:
    """Reference decoding: one prompt (BOS first), plain greedy ``generate``, cut at ``stop``."""
    ids = torch.tensor([encode(tokenizer, prompt)])
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=budget,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    text = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    return text[: min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))]


def write_xcsqa(folder, rows=XCSQA_ROWS, answers=True):
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (stem, choices, key) in enumerate(rows):
        row = {
            "id": f"fr-{i}",
            "lang": "fr",
            "question": {
                "stem": stem,
                "choices": [
                    {"label": lab, "text": t} for lab, t in zip("ABC", choices, strict=True)
                ],
            },
        }
        if answers:
            row["answerKey"] = key
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    path = folder / "dev.jsonl"
    path.write_text("".join(lines), "utf-8")
    return path


def test_xcsqa_harness_equals_hand_written_per_item(model, tokenizer, lm, tmp_path):
    path = write_xcsqa(tmp_path / "X-CSQA" / "fr")
    ours = score_multiple_choice(
        model, tokenizer, xcsqa_items(read_xcsqa(path)), MultipleChoiceConfig(4)
    ).to_task_result("xcsqa", "fr")
    task = write_xcsqa_task(tmp_path / "tasks", path, "fr")
    result = run_harness(model, tokenizer, HarnessConfig(tasks=(str(task.path),)), lm=lm)
    (theirs,) = result.task_results()
    assert (theirs.task, theirs.lang) == ("xcsqa", "fr")
    assert [r.id for r in theirs.records] == [r.id for r in ours.records]
    for a, b in zip(ours.records, theirs.records, strict=True):
        assert a.prediction == b.prediction and a.gold == b.gold and a.correct == b.correct
        assert b.scores["loglikelihoods"] == pytest.approx(a.scores["loglikelihoods"], abs=1e-9)
        assert bool(b.scores["acc_norm"]) == a.scores["correct_norm"]
    assert theirs.metrics["acc"] == pytest.approx(ours.metrics["acc"])
    assert theirs.metrics["acc_norm"] == pytest.approx(ours.metrics["acc_norm"])
    assert theirs.metrics["n"] == len(XCSQA_ROWS)


def test_limit_keeps_the_first_items(model, tokenizer, lm, tmp_path):
    task = write_xcsqa_task(tmp_path, write_xcsqa(tmp_path / "fr"), "fr")
    result = run_harness(model, tokenizer, HarnessConfig(tasks=(str(task.path),), limit=2), lm=lm)
    assert [r.id for r in result.task_results()[0].records] == ["fr-0", "fr-1"]


@pytest.mark.parametrize(("lang", "mode"), [("zh", "cot"), ("en", "direct")])
def test_mgsm_harness_equals_hand_written_outputs_and_answers(
    model, tokenizer, lm, tmp_path, lang, mode
):
    problems = [
        mgsm.MGSMProblem(f"{lang}-1", "Roger has 5 balls and buys 6 more. How many?", 11.0),
        mgsm.MGSMProblem(f"{lang}-2", "罗杰有5个球，又买了6个。", 11.0),
        mgsm.MGSMProblem(f"{lang}-3", "What is 2 + 2?", 4.0),
    ]
    shots = [
        mgsm.MGSMExemplar("Ann has 2 pens and buys 1. How many?", "2 + 1 = 3. The answer is 3.", 3),
        mgsm.MGSMExemplar("Bo has 4 cups and breaks 1.", "4 - 1 = 3. The answer is 3.", 3),
    ]
    config = mgsm.MGSMConfig(mode=mode, n_shots=2, max_new_tokens=10)
    task = write_mgsm_task(tmp_path, problems, lang, config, shots)
    result = run_harness(
        model, tokenizer, HarnessConfig(tasks=(str(task.path),), num_fewshot=2), lm=lm
    )
    sample = result.samples[task.name][0]
    assert sample["arguments"][0][0] == mgsm.mgsm_prompt(problems[0].question, lang, mode, shots)
    (theirs,) = result.task_results()
    assert (theirs.task, theirs.lang) == (config.task, lang)
    for problem, record in zip(problems, theirs.records, strict=True):
        prompt = mgsm.mgsm_prompt(problem.question, lang, mode, shots)
        output = greedy(model, tokenizer, prompt, config.budget, config.stop_strings(lang))
        assert record.scores["output"] == output  # the same text was generated
        value = extract_last_number(output)
        assert record.prediction == (NO_NUMBER if value is None else str(as_json_number(value)))
        assert record.correct == (value is not None and value == problem.answer)
    expected = sum(r.correct for r in theirs.records) / len(problems)
    assert theirs.metrics["exact_match"] == pytest.approx(expected)


def test_udhr_cont_harness_equals_hand_written(model, tokenizer, lm, tmp_path):
    docs = [f"Article {i}. " + " ".join(f"word{i}{j}" for j in range(8 + i)) for i in range(6)]
    task_config = UDHRContConfig()
    ours = evaluate_udhr_continuation(model, tokenizer, docs, "en", task_config)
    items = build_udhr_continuation_items(docs, "en", task_config)
    task = write_udhr_cont_task(tmp_path, items, "en")
    (theirs,) = run_harness(
        model, tokenizer, HarnessConfig(tasks=(str(task.path),)), lm=lm
    ).task_results()
    assert (theirs.task, theirs.lang) == ("udhr-cont", "en")
    for a, b in zip(ours.records, theirs.records, strict=True):
        assert (a.id, a.prediction, a.correct) == (b.id, b.prediction, b.correct)
        assert b.scores["loglikelihoods"] == pytest.approx(a.scores["loglikelihoods"], abs=1e-9)


def test_rolling_loglikelihood_equals_windowed_perplexity(model, tokenizer):
    """lm-eval's rolling windows of L tokens (BOS as prefix, not as a target) are babelmoe's
    disjoint windows of L + 1 tokens: the same targets, each from the same context."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    texts = ["All human beings are born free and equal in dignity and rights. " * 3, "Hi there"]
    window = 40  # both texts but the last are longer: several windows
    ours = perplexity(model, tokenizer, texts, PerplexityConfig(max_length=window + 1))
    rolling = HFLM(
        pretrained=model, tokenizer=tokenizer, batch_size=3, max_length=window, add_bos_token=False
    )
    requests = [Instance("loglikelihood_rolling", {}, (text,), i) for i, text in enumerate(texts)]
    theirs = rolling.loglikelihood_rolling(requests, disable_tqdm=True)
    for doc, logprob in zip(ours.documents, theirs, strict=True):
        assert -logprob == pytest.approx(doc.nll_sum, abs=1e-8)
    n_tokens = sum(len(encode(tokenizer, t, add_bos=False)) for t in texts)
    assert ours.n_tokens == n_tokens
    assert ours.ppl == pytest.approx(math.exp(-sum(theirs) / n_tokens))


def test_harness_tokenizer_adds_bos_once(tokenizer):
    patched = harness_tokenizer(tokenizer, add_bos=True)  # the byte tokenizer adds nothing
    assert patched is not tokenizer
    assert patched("abc")["input_ids"] == encode(tokenizer, "abc")
    assert tokenizer("abc")["input_ids"] == encode(tokenizer, "abc", add_bos=False)  # untouched
    assert harness_tokenizer(patched, add_bos=True) is patched  # already agrees: as is
    assert harness_tokenizer(tokenizer, add_bos=False) is tokenizer
    with pytest.raises(BabelmoeError, match="special tokens differ"):
        harness_tokenizer(patched, add_bos=False)


def test_written_files_are_lm_eval_format(model, tokenizer, lm, tmp_path):
    task = write_xcsqa_task(tmp_path, write_xcsqa(tmp_path / "fr"), "fr")
    result = run_harness(model, tokenizer, HarnessConfig(tasks=(str(task.path),)), lm=lm)
    path = write_harness_results(tmp_path / "eval", result)
    written = json.loads(path.read_text("utf-8"))
    assert written["results"][task.name]["acc,none"] == result.metrics(task.name)["acc,none"]
    assert written["configs"][task.name]["metadata"]["babelmoe_task"] == "xcsqa"
    lines = (path.parent / f"samples_{task.name}.jsonl").read_text("utf-8").splitlines()
    first = json.loads(lines[0])
    assert len(lines) == len(XCSQA_ROWS) and first["doc_id"] == 0
    assert set(first["arguments"]) == {"gen_args_0", "gen_args_1", "gen_args_2"}  # a choice each
    assert len(first["filtered_resps"]) == 3
    with pytest.raises(BabelmoeError, match="already exists"):
        write_harness_results(tmp_path / "eval", result)


def test_task_writers_refuse_what_cannot_be_scored(tmp_path):
    unanswered = write_xcsqa(tmp_path / "test", answers=False)
    with pytest.raises(BabelmoeError, match="no answerKey"):
        write_xcsqa_task(tmp_path / "tasks", unanswered, "fr")
    with pytest.raises(BabelmoeError, match="no MGSM problems"):
        write_mgsm_task(tmp_path, [], "en")
    with pytest.raises(BabelmoeError, match="no UDHR-Cont items"):
        write_udhr_cont_task(tmp_path, [], "en")


def test_config_and_missing_lm_eval(monkeypatch, tmp_path):
    with pytest.raises(BabelmoeError, match="no such task file"):
        HarnessConfig(tasks=(str(tmp_path / "nope.yaml"),)).task_files()
    with pytest.raises(BabelmoeError, match="no harness task"):
        HarnessConfig(tasks=())
    monkeypatch.setattr(harness_module, "lm_eval_available", lambda: False)
    with pytest.raises(BabelmoeError, match=r"pip install 'babelmoe\[eval\]'"):
        harness_module.require_lm_eval()


def test_last_number_filter_reads_any_script():
    outputs = [["so 5 + 6 = 11."], ["答案是 １２"], ["উত্তর ৫"], ["no digits"], ["-3 then 2.5"]]
    assert last_number(outputs, [{}] * 5) == [["11"], ["12"], ["5"], [NO_NUMBER], ["2.5"]]
