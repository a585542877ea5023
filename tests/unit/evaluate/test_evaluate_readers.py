"""Readers of the published X-CSQA and MGSM formats, on files written here; the results writer."""

from __future__ import annotations

import json
import math

import pytest

from babelmoe.errors import BabelmoeError
from babelmoe.evaluate import read_mgsm, read_mgsm_exemplars, read_xcsqa, xcsqa_items
from babelmoe.evaluate.results import ItemRecord, TaskResult, read_task_summary, write_task_result
from babelmoe.evaluate.tasks.mgsm import MGSMConfig, mgsm_prompt, template_for
from babelmoe.evaluate.tasks.xcsqa import parse_question


def xcsqa_line(i: int, key: str | None = "B", lang: str = "fr") -> str:
    row = {
        "id": f"q{i}",
        "lang": lang,
        "question": {
            "stem": f"Question {i} ?",
            "choices": [{"label": lab, "text": f"choix {lab}"} for lab in "ABCDE"],
        },
    }
    if key is not None:
        row["answerKey"] = key
    return json.dumps(row, ensure_ascii=False) + "\n"


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- X-CSQA --------------------------------------------------------------------------------


def test_xcsqa_reads_the_published_layout(tmp_path):
    write(tmp_path / "X-CSQA" / "fr" / "dev.jsonl", xcsqa_line(0) + "\n" + xcsqa_line(1, "E"))
    write(tmp_path / "X-CSQA" / "jap" / "dev.jsonl", xcsqa_line(0, "A", "jap"))
    questions = read_xcsqa(tmp_path / "X-CSQA", lang="fr", split="dev")
    assert [q.id for q in questions] == ["q0", "q1"]  # blank lines skipped
    assert questions[0].choices == tuple(f"choix {lab}" for lab in "ABCDE")
    assert read_xcsqa(tmp_path / "X-CSQA" / "fr" / "dev.jsonl") == questions
    assert read_xcsqa(tmp_path / "X-CSQA", lang="ja")[0].answer_key == "A"  # ja is "jap"
    items = xcsqa_items(questions)
    assert items[0].context == "Question: Question 0 ?\nAnswer:"
    assert [item.gold for item in items] == [1, 4]


def test_xcsqa_accepts_the_hugging_face_row_shape():
    row = {
        "id": "x",
        "lang": "en",
        "question": {"stem": "Where?", "choices": {"label": ["A", "B"], "text": ["here", "there"]}},
        "answerKey": "B",
    }
    question = parse_question(row, "hub[0]")
    assert question.choices == ("here", "there") and question.answer_key == "B"


def test_xcsqa_test_split_reads_but_refuses_accuracy(tmp_path):
    path = write(tmp_path / "test.jsonl", xcsqa_line(0, key=None) + xcsqa_line(1, key=None))
    questions = read_xcsqa(path)
    assert all(q.answer_key is None for q in questions)
    with pytest.raises(BabelmoeError, match=r"no answerKey.*dev split"):
        xcsqa_items(questions)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such X-CSQA JSONL file"),
        ("", "is empty"),
        ("\n  \n", "is empty"),
        (xcsqa_line(0) + "{not json\n", r"dev.jsonl:2: malformed JSON"),
        ("[1, 2]\n", r"dev.jsonl:1: expected a JSON object"),
        ('{"id": "a", "answerKey": "A"}\n', r"dev.jsonl:1: missing field 'question'"),
        (xcsqa_line(0, key="Z"), "answerKey 'Z' is not one of the labels"),
    ],
)
def test_xcsqa_errors_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "dev.jsonl"
    if content is not None:
        write(path, content)
    with pytest.raises(BabelmoeError, match=message):
        read_xcsqa(path)


# --- MGSM ----------------------------------------------------------------------------------


def test_mgsm_reads_the_published_tsv(tmp_path):
    write(tmp_path / "mgsm_fr.tsv", "Janet a 16 œufs. Combien ?\t18\nDeux plus deux ?\t1,000\n")
    problems = read_mgsm(tmp_path, lang="fr")
    assert [(p.id, p.answer) for p in problems] == [("fr-1", 18.0), ("fr-2", 1000.0)]
    assert read_mgsm(tmp_path / "mgsm_fr.tsv") == problems


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such MGSM TSV file"),
        ("", "is empty"),
        ("question without a tab 18\n", r"mgsm_en.tsv:1: expected question TAB answer"),
        ("ok\t1\nq\tmany\n", r"mgsm_en.tsv:2: answer 'many' is not a number"),
        ("q\t1\t2\n", "found 3 field"),
    ],
)
def test_mgsm_errors_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "mgsm_en.tsv"
    if content is not None:
        write(path, content)
    with pytest.raises(BabelmoeError, match=message):
        read_mgsm(path)


EXEMPLARS = {
    "en": {
        "1": {
            "q": "Question: Roger has 5 balls. He buys 6 more. How many?",
            "a": "Step-by-Step Answer: 5 + 6 = 11. The answer is 11.",
        },
        "2": {
            "q": "Question: Ann had 3 pens and lost 1. How many?",
            "a": "Step-by-Step Answer: 3 - 1 = 2. The answer is 2.",
        },
    },
    "zh": {
        "1": {
            "q": "问题：罗杰有 5 个网球。他又买了 6 个。他现在有多少个？",
            "a": "逐步解答：5 + 6 = 11。答案是 11。",
        }
    },
}


def test_mgsm_exemplars_and_prompts(tmp_path):
    path = write(tmp_path / "exemplars.json", json.dumps(EXEMPLARS, ensure_ascii=False))
    shots = read_mgsm_exemplars(path, "en")
    assert shots[0].question == "Roger has 5 balls. He buys 6 more. How many?"
    assert shots[0].reasoning == "5 + 6 = 11. The answer is 11." and shots[0].answer == 11
    assert (
        read_mgsm_exemplars(write(tmp_path / "en.json", json.dumps(EXEMPLARS["en"])), "en") == shots
    )
    assert mgsm_prompt("Q?", "en", "cot", shots[:1]) == (
        "Question: Roger has 5 balls. He buys 6 more. How many?\n"
        "Step-by-Step Answer: 5 + 6 = 11. The answer is 11.\n\n"
        "Question: Q?\nStep-by-Step Answer:"
    )
    assert mgsm_prompt("Q?", "en", "direct", shots[:1]) == (
        "Question: Roger has 5 balls. He buys 6 more. How many?\nAnswer: 11\n\n"
        "Question: Q?\nAnswer:"
    )
    zh = read_mgsm_exemplars(path, "zh")
    assert mgsm_prompt("问?", "zh", "cot", zh) == (
        "问题：罗杰有 5 个网球。他又买了 6 个。他现在有多少个？\n"
        "逐步解答：5 + 6 = 11。答案是 11。\n\n"
        "问题：问?\n逐步解答："
    )
    assert template_for("xx") == template_for("en")  # fallback
    for lang in ("en", "fr", "es", "zh", "bn"):
        assert template_for(lang).question.strip() in mgsm_prompt("q", lang)
    with pytest.raises(BabelmoeError, match="not MGSM_EXEMPLARS"):
        read_mgsm_exemplars(write(tmp_path / "bad.json", '{"en": [1, 2]}'), "en")
    with pytest.raises(BabelmoeError, match="malformed JSON"):
        read_mgsm_exemplars(write(tmp_path / "broken.json", '{"en": '), "en")


def test_mgsm_scoring_of_scripted_outputs(tmp_path):
    """What the shipped MGSM task's filter makes of outputs, against the gold it writes."""
    from babelmoe.evaluate.harness_tasks import write_mgsm_task
    from babelmoe.evaluate.harness_tasks.functions import NO_NUMBER, last_number
    from babelmoe.evaluate.tasks import mgsm

    outputs = [" 5 + 13 = 18. The answer is 18.", " 答案是 ３。", " I am not sure.", " 1,000"]
    problems = [mgsm.MGSMProblem(f"p{i}", "q", gold) for i, gold in enumerate([18, 3, 5, 999])]
    predicted = [p[0] for p in last_number([[o] for o in outputs], [{}] * 4)]
    assert predicted == ["18", "3", NO_NUMBER, "1000"]
    task = write_mgsm_task(tmp_path, problems, "en", MGSMConfig())
    rows = (tmp_path / "data" / f"{task.name}.test.jsonl").read_text("utf-8").splitlines()
    gold = [json.loads(row)["answer_number"] for row in rows]
    assert [p == g for p, g in zip(predicted, gold, strict=True)] == [True, True, False, False]
    with pytest.raises(BabelmoeError, match="2 shots asked, 0 exemplars"):
        write_mgsm_task(tmp_path, problems, "en", MGSMConfig(n_shots=2))
    assert MGSMConfig(mode="direct").stop_strings("fr") == ("\n", "Question :")


# --- results -------------------------------------------------------------------------------


def test_task_result_writer(tmp_path):
    records = [
        ItemRecord("a", 1, 1, True, {"loglikelihoods": [-1.0, -2.0]}),
        ItemRecord("b", None, 3, False, {"output": "x", "nan": math.nan}),
    ]
    result = TaskResult("mgsm-cot", "fr", {"acc": 0.5, "n": 2}, records, {"k": 1})
    assert read_task_summary(tmp_path, "mgsm-cot", "fr") is None
    path = write_task_result(tmp_path, result, meta={"model": "m"})
    assert path.name == "mgsm-cot.fr.json"
    summary = read_task_summary(tmp_path, "mgsm-cot", "fr")
    assert summary["metrics"] == {"acc": 0.5, "n": 2} and summary["meta"] == {"model": "m"}
    lines = [json.loads(x) for x in (tmp_path / "mgsm-cot.fr.items.jsonl").read_text().splitlines()]
    assert lines[0] == {
        "id": "a",
        "prediction": 1,
        "gold": 1,
        "correct": True,
        "loglikelihoods": [-1.0, -2.0],
    }
    assert lines[1]["nan"] is None  # NaN is not JSON
    with pytest.raises(BabelmoeError, match="already exists"):
        write_task_result(tmp_path, result)
    write_task_result(tmp_path, result, overwrite=True)
    write(tmp_path / "x.fr.json", "{broken")
    with pytest.raises(BabelmoeError, match="corrupted"):
        read_task_summary(tmp_path, "x", "fr")
