"""``babelmoe prune`` and ``babelmoe evaluate`` on a run folder of a tiny model: what is written,
what is refused, and that evaluation reads only the held-out documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from babelmoe.cli import main
from babelmoe.corpus import load_corpus
from babelmoe.errors import BabelmoeError
from babelmoe.prune.criteria import PruneConfig
from babelmoe.prune.surgery import load_pruned, read_pruning_record
from babelmoe.stages.evaluate import EvaluateConfig, run_evaluate
from babelmoe.stages.prune import run_prune
from babelmoe.testing import cpu_spec, save_model_folder, tiny_loaded


def test_prune_writes_a_loadable_model_and_its_record(run: tuple[Path, Path]) -> None:
    run_dir, model_dir = run
    config = PruneConfig(method="sort-per-layer", ratio=0.25, languages=("en",))
    out = run_prune(config, run_dir, model=cpu_spec(model_dir))
    assert out == run_dir / "pruned" / "sort-per-layer-en-r0.25-s0"
    record = read_pruning_record(out)
    assert record["method"] == "sort-per-layer" and record["languages"] == ["en"]
    assert record["language_codes"] == ["eng"] and record["ratio"] == 0.25
    assert record["loader"] == "transformers" and record["widths"] == [48, 48]
    assert [len(r) for r in record["removed_experts"]] == [2, 2]
    assert record["partition_sha256"] and record["neuron_rate"] == pytest.approx(0.25)
    assert (out / "tokenizer.json").is_file()
    from transformers import AutoModelForCausalLM

    stock = AutoModelForCausalLM.from_pretrained(out)
    ids = torch.tensor([[1, 5, 6, 7, 8]])
    torch.testing.assert_close(stock(ids).logits, load_pruned(out)(ids).logits)
    # same again: kept, no error
    assert run_prune(config, run_dir, model=cpu_spec(model_dir)) == out


def test_prune_refuses_a_different_model_in_the_same_folder(run: tuple[Path, Path]) -> None:
    run_dir, model_dir = run
    out = run_dir / "pruned" / "mine"
    run_prune(
        PruneConfig(method="random", ratio=0.25, seed=1),
        run_dir,
        model=cpu_spec(model_dir),
        out=out,
    )
    other = PruneConfig(method="random", ratio=0.25, seed=2)
    with pytest.raises(BabelmoeError, match="different pruned model"):
        run_prune(other, run_dir, model=cpu_spec(model_dir), out=out)
    run_prune(other, run_dir, model=cpu_spec(model_dir), out=out, force=True)
    assert read_pruning_record(out)["seed"] == 2


def test_prune_refuses_a_language_not_profiled_and_a_partition_for_another_model(
    run: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir, model_dir = run
    with pytest.raises(BabelmoeError, match="'de' was not profiled"):
        run_prune(
            PruneConfig(method="sort", ratio=0.1, languages=("de",)),
            run_dir,
            model=cpu_spec(model_dir),
        )
    other = save_model_folder(tiny_loaded("llama", seed=7), tmp_path / "other")
    with pytest.raises(BabelmoeError, match="partition was made for other weights"):
        run_prune(
            PruneConfig(method="sort", ratio=0.1, languages=("en",)),
            run_dir,
            model=cpu_spec(other),
            out=tmp_path / "x",
        )


def test_evaluate_a_pruned_folder_on_held_out_documents_only(run: tuple[Path, Path]) -> None:
    run_dir, model_dir = run
    pruned = run_prune(
        PruneConfig(method="sort", ratio=0.4, languages=("en", "fr")),
        run_dir,
        model=cpu_spec(model_dir),
    )
    assert read_pruning_record(pruned)["loader"] == "babelmoe"  # global sort: uneven widths
    config = EvaluateConfig(udhr_cont=True, udhr_cont_segment="document")
    path = run_evaluate(config, run_dir, model=cpu_spec(pruned))
    results = json.loads(path.read_text())
    assert set(results["results"]) == {"perplexity", "udhr-cont"}
    assert set(results["results"]["perplexity"]) == {"en", "fr"}
    assert results["pruning"]["method"] == "sort"
    corpus = load_corpus(str(run_dir.parent / "corpus"), ["en", "fr"])
    _, held = corpus.split_heldout(0.5, 0)
    for lang, entry in zip(["en", "fr"], held, strict=True):
        summary = json.loads((path.parent / f"perplexity.{lang}.json").read_text())
        assert summary["config"]["documents"] == [d.id for d in entry.documents]
        items = (path.parent / f"perplexity.{lang}.items.jsonl").read_text().splitlines()
        assert [json.loads(x)["id"] for x in items] == [d.id for d in entry.documents]
        assert results["results"]["perplexity"][lang]["ppl"] > 1
    with pytest.raises(BabelmoeError, match="already exists"):
        run_evaluate(config, run_dir, model=cpu_spec(pruned))


def test_evaluate_the_dense_model_and_a_language_subset(
    run: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir, model_dir = run
    path = run_evaluate(
        EvaluateConfig(languages=("fr",)),
        run_dir,
        model=cpu_spec(model_dir),
        out=tmp_path / "dense",
    )
    results = json.loads(path.read_text())
    assert list(results["results"]["perplexity"]) == ["fr"] and results["pruning"] is None


def test_evaluate_takes_the_model_loaded_or_as_its_spec(
    run: tuple[Path, Path], tmp_path: Path
) -> None:
    """One model passed either way: the same numbers and the same recorded source."""
    from babelmoe.models.loading import load_model

    run_dir, model_dir = run
    config = EvaluateConfig(languages=("en",), max_documents=1)
    spec, loaded = (
        json.loads(run_evaluate(config, run_dir, model=model, out=tmp_path / name).read_text())
        for name, model in (
            ("spec", cpu_spec(model_dir)),
            ("loaded", load_model(cpu_spec(model_dir))),
        )
    )
    assert loaded["results"] == spec["results"]
    assert loaded["source"] == spec["source"] == str(model_dir)


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--method", "sort", "--ratio", "1.0", "--languages", "en"],
            "pruning ratio must be in [0, 1)",
        ),
        (
            ["--method", "sort", "--ratio", "-0.2", "--languages", "en"],
            "pruning ratio must be in [0, 1)",
        ),
        (["--method", "sort", "--ratio", "0.2", "--languages", "xx"], "'xx' was not profiled"),
        (["--method", "threshold", "--ratio", "0.2", "--languages", "en"], "takes --tau"),
    ],
)
def test_cli_errors_are_one_line(
    run: tuple[Path, Path], capsys, args: list[str], message: str
) -> None:
    run_dir, model_dir = run
    code, err = cli(["prune", str(run_dir), "--model", str(model_dir), *args], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_cli_prune_then_evaluate(run: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    run_dir, model_dir = run
    out = tmp_path / "cli-pruned"
    main(
        [
            "prune",
            str(run_dir),
            "--model",
            str(model_dir),
            "--method",
            "adaptive",
            "--ratio",
            "0.3",
            "--languages",
            "en,fr",
            "--aggregate",
            "max",
            "--out",
            str(out),
        ]
    )
    assert read_pruning_record(out)["criterion"]["aggregate"] == "max"
    main(["evaluate", str(out), "--run", str(run_dir), "--out", str(tmp_path / "ev")])
    assert (tmp_path / "ev" / "results.json").is_file()
    assert "results written to" in capsys.readouterr().out


def test_evaluate_reads_published_task_files_and_skips_missing_languages(
    run: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir, model_dir = run
    question = {
        "id": "q1",
        "lang": "en",
        "answerKey": "B",
        "question": {
            "stem": "where are fish?",
            "choices": [{"label": "A", "text": "sky"}, {"label": "B", "text": "sea"}],
        },
    }
    (tmp_path / "xcsqa" / "en").mkdir(parents=True)
    (tmp_path / "xcsqa" / "en" / "dev.jsonl").write_text(json.dumps(question) + "\n")
    (tmp_path / "mgsm").mkdir()
    (tmp_path / "mgsm" / "mgsm_en.tsv").write_text("two plus two?\t4\nthree plus one?\t4\n")
    config = EvaluateConfig(xcsqa=tmp_path / "xcsqa", mgsm=tmp_path / "mgsm", mgsm_mode="direct")
    path = run_evaluate(config, run_dir, model=cpu_spec(model_dir), out=tmp_path / "out")
    results = json.loads(path.read_text())["results"]
    assert results["xcsqa"]["en"]["n"] == 1 and "fr" not in results["xcsqa"]
    assert results["mgsm-direct"]["en"]["n"] == 2 and "fr" not in results["mgsm-direct"]
    assert (tmp_path / "out" / "mgsm-direct.en.items.jsonl").is_file()
