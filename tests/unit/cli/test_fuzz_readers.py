"""Property-based tests (Hypothesis) of every reader of a user's file (issue 22).

For any input: a correct result or one ``BabelmoeError`` (one line, exit 2/3 from the CLI),
never another exception (a traceback), never partial output. Readers covered: the architecture
JSON (``--architectures``) and its check against a model, task YAMLs and their data (``--tasks``),
corpus folders (``.txt`` / ``.jsonl``), and the JSON of artifacts (``read_json``, ``load_meta``,
``load_artifact``). Inputs are built from the valid shape with pieces spoiled (wrong types,
missing or extra fields, junk bytes), which finds more than uniform noise. Examples are few and
fast (no model is loaded but the tiny one, once) so the module fits CI on 2 cores.
"""

from __future__ import annotations

import json
import os
import string
import tempfile
from pathlib import Path
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from babelmoe.errors import BabelmoeError  # noqa: E402

# BABELMOE_FUZZ_EXAMPLES=1000 for a deeper search than CI's
FAST = settings(
    max_examples=int(os.environ.get("BABELMOE_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# JSON values of every kind, small
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 300)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
junk_bytes = st.binary(max_size=200)


def one_line(exc: BabelmoeError) -> None:
    """What the CLI prints: one line with what is wrong (and usually what to do)."""
    line = exc.one_line()
    assert line and "\n" not in line and "Traceback" not in line


def spoil(value: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """``value`` with some fields deleted, replaced by any JSON value, or added."""
    out = dict(value)
    for key in list(out):
        choice = data.draw(st.sampled_from(["keep", "keep", "drop", "replace"]))
        if choice == "drop":
            del out[key]
        elif choice == "replace":
            out[key] = data.draw(json_values)
    if data.draw(st.booleans()):
        out[data.draw(st.text(string.ascii_lowercase + "_", min_size=1, max_size=10))] = data.draw(
            json_values
        )
    return out


# --- architecture JSON -----------------------------------------------------------------------

LLAMA_ENTRY = {
    "layers": "model.layers",
    "mlp": "mlp",
    "up": "up_proj",
    "gate": "gate_proj",
    "down": "down_proj",
    "fused_gate_up": False,
    "conv1d": False,
    "width_config_key": "intermediate_size",
}
NAMES = st.sampled_from(
    ["up_proj", "gate_proj", "down_proj", "q_proj", "o_proj", "mlp", "self_attn", "model.layers"]
)


@pytest.fixture(scope="module")
def tiny_model():
    from babelmoe.testing import byte_tokenizer, tiny_llama

    return tiny_llama(byte_tokenizer())


def _restored_table():
    from babelmoe.models import architectures

    return dict(architectures.ARCHITECTURES), set(architectures.USER_REGISTERED)


def _restore(saved) -> None:
    from babelmoe.models import architectures

    table, users = saved
    architectures.ARCHITECTURES.clear()
    architectures.ARCHITECTURES.update(table)
    architectures.USER_REGISTERED.clear()
    architectures.USER_REGISTERED.update(users)


@FAST
@given(data=st.data())
def test_any_architectures_file_is_registered_or_refused_in_one_line(tiny_model, data):
    """Any file: registered, or one line. Registered for the tiny model's family: its FFNs are
    then found consistently (up, gate and down agree) or refused in one line."""
    from babelmoe.models.architectures import register_from_file
    from babelmoe.models.ffn import ffns

    kind = data.draw(st.sampled_from(["spoiled", "names", "any", "bytes"]))
    if kind == "bytes":
        content = data.draw(junk_bytes)
    else:
        if kind == "spoiled":
            entry: Any = spoil(LLAMA_ENTRY, data)
        elif kind == "names":
            entry = {**LLAMA_ENTRY, **{k: data.draw(NAMES) for k in ("mlp", "up", "down")}}
            entry["gate"] = data.draw(st.none() | NAMES)
        else:
            entry = data.draw(json_values)
        table = data.draw(st.sampled_from([{"llama": entry}, {"other": entry}, entry]))
        content = json.dumps(table).encode()
    saved = _restored_table()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "arch.json"
        path.write_bytes(content)
        try:
            try:
                register_from_file(path)
            except BabelmoeError as exc:
                one_line(exc)
                return
            try:
                layers = ffns(tiny_model)
            except BabelmoeError as exc:
                one_line(exc)
                return
            for ffn in layers:  # what was accepted is one FFN of the model
                width = ffn.width
                assert ffn.up_rows().shape[0] == width
                if ffn.gate is not None:
                    assert ffn.gate_rows().shape == ffn.up_rows().shape
        finally:
            _restore(saved)


# --- task YAML and its data -------------------------------------------------------------------

GOOD_DOC = {"q": "Paris is in", "choices": ["France", "Peru"], "gold": 0}


def good_task(data_path: Path) -> dict[str, Any]:
    return {
        "task": "capitals",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_path)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "{{q}}",
        "doc_to_choice": "choices",
        "doc_to_target": "gold",
    }


templates = st.sampled_from(
    ["{{q}}", "{{ q }}?", "{{missing}}", "{{q", "{% if %}", "q", "choices", "gold", "{{gold}}",
     "['a', 'b']", "{{choices}}", "", "{{q|upper}}", "{{ 1/0 }}"]
)  # fmt: skip


@FAST
@given(data=st.data())
def test_any_task_file_is_accepted_or_refused_in_one_line(data):
    """A spoiled task (fields, templates, documents, shots) is checked or refused in one line.
    Accepted multiple-choice tasks render with lm-eval's own template code on every document."""
    import yaml

    from babelmoe.evaluate.task_files import check_task_file

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data_path = folder / "data.jsonl"
        docs = [
            spoil(GOOD_DOC, data) if data.draw(st.booleans()) else dict(GOOD_DOC)
            for _ in range(data.draw(st.integers(1, 4)))
        ]
        lines = [json.dumps(d) for d in docs]
        if data.draw(st.integers(0, 5)) == 0:
            lines.append(data.draw(st.text(max_size=20)))
        data_path.write_text("\n".join(lines) + "\n")
        task = spoil(good_task(data_path), data)
        for key in ("doc_to_text", "doc_to_choice", "doc_to_target"):
            if data.draw(st.integers(0, 3)) == 0:
                task[key] = data.draw(templates)
        kind = data.draw(st.sampled_from(["yaml", "yaml", "yaml", "text", "bytes"]))
        path = folder / "task.yaml"
        if kind == "yaml":
            path.write_text(yaml.safe_dump(task))
        elif kind == "text":
            path.write_text(data.draw(st.text(max_size=60)))
        else:
            path.write_bytes(data.draw(junk_bytes))
        shots = data.draw(st.none() | st.integers(0, 6))
        try:
            checked = check_task_file(path, num_fewshot=shots)
        except BabelmoeError as exc:
            one_line(exc)
            return
        if checked.config.get("output_type") == "multiple_choice" and checked.docs:
            from lm_eval.utils import apply_template

            for doc in checked.docs.get("test", []):
                for key in ("doc_to_text", "doc_to_choice", "doc_to_target"):
                    spec = checked.config.get(key)
                    if isinstance(spec, str) and spec not in doc:
                        apply_template(spec, doc)  # lm-eval's code: must not raise either


# --- corpus folders ---------------------------------------------------------------------------

paragraphs = st.lists(st.text(min_size=1, max_size=30), min_size=0, max_size=5)


@FAST
@given(data=st.data())
def test_any_corpus_folder_loads_or_is_refused_in_one_line(data):
    """Text and JSONL files of any content: the documents as the format says, or one line."""
    from babelmoe.corpus.folder import load_folder

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        expected: dict[str, list[str]] = {}
        kind = data.draw(st.sampled_from(["txt", "jsonl", "bytes", "folder"]))
        if kind == "txt":
            texts = data.draw(paragraphs)
            (folder / "en.txt").write_text("\n\n".join(texts), encoding="utf-8")
            kept = [t for t in texts if t.strip()]
            # a paragraph with blank lines inside is several documents: only count clean ones
            if all("\n" not in t and "\r" not in t and "\x0b" not in t for t in kept):
                expected["en"] = [t.strip() for t in kept]
        elif kind == "jsonl":
            rows = data.draw(st.lists(json_values | st.just({"text": "a document"}), max_size=4))
            (folder / "en.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
        elif kind == "bytes":
            (folder / "en.txt").write_bytes(data.draw(junk_bytes))
        else:
            (folder / "en.txt").mkdir()
            (folder / "fr.txt").write_text("un document\n")
        try:
            corpora = load_folder(folder, ["en"])
        except BabelmoeError as exc:
            one_line(exc)
            return
        assert [c.lang.code for c in corpora] == ["eng"] or corpora
        if expected.get("en"):
            assert [d.text for d in corpora[0].documents] == expected["en"]


# --- artifacts' JSON --------------------------------------------------------------------------


@FAST
@given(content=json_values.map(lambda v: json.dumps(v).encode()) | junk_bytes)
def test_any_json_in_place_of_an_artifact_is_read_or_refused_in_one_line(content):
    from babelmoe import artifacts

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "summary.json").write_bytes(content)
        (folder / "profile.json").write_bytes(content)
        (folder / "profile.safetensors").write_bytes(content)
        for read in (
            lambda: artifacts.read_json(folder / "summary.json", kind="analysis"),
            lambda: artifacts.load_meta(folder, "profile", "profile"),
            lambda: artifacts.load_artifact(folder, "profile", "profile"),
        ):
            try:
                assert isinstance(read(), dict | tuple)
            except BabelmoeError as exc:
                one_line(exc)


@FAST
@given(data=st.data())
def test_a_spoiled_artifact_json_is_refused_in_one_line(data, tmp_path_factory):
    """A real artifact's JSON with fields spoiled: loaded only when nothing that matters
    changed, otherwise one line (the checksum, a missing field, the kind, the version)."""
    import torch

    from babelmoe import artifacts

    folder = tmp_path_factory.mktemp("artifact")
    path = artifacts.save_artifact(
        folder, "partition", {"labels": torch.zeros(2, 4, dtype=torch.int64)}, {"n_experts": 2},
        "partition",
    )  # fmt: skip
    meta = json.loads(path.read_text())
    spoiled = spoil(meta, data)
    path.write_text(json.dumps(spoiled))
    try:
        _, loaded = artifacts.load_artifact(folder, "partition", "partition")
    except BabelmoeError as exc:
        one_line(exc)
        return
    assert loaded == meta  # accepted only when unchanged


# --- the command line: no partial output ------------------------------------------------------


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_cli_refuses_a_spoiled_task_file_before_writing_anything(data, tmp_path_factory):
    """``babelmoe evaluate --tasks SPOILED.yaml``: exit 0 is not reached without a model here,
    so every spoiled file that the check refuses gives one line and leaves the folder as it was."""
    import yaml

    from tests.cli_helpers import run_cli, tiny_run, tree

    run = tiny_run(tmp_path_factory)
    root = tmp_path_factory.mktemp("cli")
    data_path = root / "data.jsonl"
    data_path.write_text(json.dumps(GOOD_DOC) + "\n")
    task = spoil(good_task(data_path), data)
    task["task"] = data.draw(st.none() | st.integers() | st.just("")) if "task" in task else None
    (root / "task.yaml").write_text(yaml.safe_dump(task))
    before = tree(root), tree(run)
    out = root / "out"
    result = run_cli(
        ["evaluate", "nope-model", "--run", run, "--out", out, "--tasks", root / "task.yaml"]
    )
    assert result.code == 2
    lines = result.error_lines
    assert len(lines) == 1 and lines[0].startswith("babelmoe: error: task file"), lines
    assert (tree(root), tree(run)) == before


@FAST
@given(lines=st.lists(json_values.map(json.dumps) | st.text(max_size=30), max_size=5))
def test_any_sweep_rows_file_resumes_or_is_refused_in_one_line(lines):
    """``sweep/rows.jsonl`` with a matching header and any lines after it: the rows that are
    rows are kept, the rest is evaluated again; a header of another sweep is one line."""
    from babelmoe.stages.sweep import read_rows

    identity = {"config": {"ratios": [0.25]}}
    row = {"method": "dense", "ratio": 0.0, "seed": None, "target": None, "eval_lang": "en"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.jsonl"
        for header in ({"identity": identity}, {"identity": {"config": 1}}, [1]):
            body = [json.dumps(header), json.dumps(row), *lines]
            path.write_text("\n".join(body) + "\n")
            try:
                rows = read_rows(path, identity, force=False)
            except BabelmoeError as exc:
                one_line(exc)
                continue
            assert rows[("dense", 0.0, None, None, "en")] == row or len(lines) > 0


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_split_with_any_architectures_file_succeeds_whole_or_leaves_nothing(data, tmp_path_factory):
    """``babelmoe --architectures F split``: a complete partition (exit 0) or one line (exit 2)
    and no output folder; the streamed checkpoint path is checked like a loaded model."""
    from tests.cli_helpers import SPLIT_ARGS, run_cli, tiny_checkpoint, tree

    model = tiny_checkpoint(tmp_path_factory)
    root = tmp_path_factory.mktemp("split")
    entry = {**LLAMA_ENTRY, **{k: data.draw(NAMES) for k in ("mlp", "up", "down")}}
    entry["gate"] = data.draw(st.none() | NAMES)
    entry = spoil(entry, data) if data.draw(st.booleans()) else entry
    (root / "arch.json").write_text(json.dumps({"llama": entry}))
    saved = _restored_table()
    try:
        result = run_cli(
            ["--architectures", root / "arch.json", "split", "--out", root / "out",
             "--model", model, "--device", "cpu", *SPLIT_ARGS]
        )  # fmt: skip
    finally:
        _restore(saved)
    if result.code == 0:
        assert (root / "out" / "partition.json").is_file()
        return
    assert result.code == 2, result.stderr
    lines = [line for line in result.error_lines if line.startswith("babelmoe:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert tree(root / "out") == {}
