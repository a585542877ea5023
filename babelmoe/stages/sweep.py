"""The runner of ``babelmoe sweep``: evaluate a sweep design (``babelmoe.prune.sweep``).

Every configuration is a mask on the FFN intermediate of the one loaded model
(``babelmoe.evaluate.masked``: equal to the physically pruned model within float tolerance;
nothing is cut, copied or written) and evaluates held-out perplexity (and UDHR-Cont accuracy
when asked). Jobs:

* ``dense``: the unpruned model, on every language;
* ``random`` (ratio, seed): language-independent, so one pruned model serves every language;
* a frequency or norm method (ratio, target A): evaluated on A; for the language-specificity
  check (``specificity_method`` at ``specificity_ratio``) on every language B as well.

With harness tasks (``babelmoe sweep --tasks``: lm-eval task names or YAML files, the eval
extra), every pruned model also runs them once (they do not depend on the target language); the
numbers go into each row of the job (``harness``: ``{task: {metric: value}}``) and into
``RUN/sweep/harness.csv`` (one line per model, task and metric) and the report section.

Rows go to ``RUN/sweep/rows.jsonl`` as each job finishes; re-running the same sweep skips the
rows already there (an interrupted sweep resumes). The summary, tables, plots and the report
section are written here (``write_report``), from ``babelmoe.analysis.sweep`` (curves,
verdicts), ``babelmoe.plots.sweep`` (figures) and ``babelmoe.plots.sweep_sections`` (HTML).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from babelmoe import artifacts
from babelmoe.analysis.sweep import (
    CURVE_FIELDS,
    ROW_FIELDS,
    curves,
    pair_verdicts,
    specificity,
    verdicts,
)
from babelmoe.errors import BabelmoeError, setting
from babelmoe.evaluate import (
    MultipleChoiceConfig,
    PerplexityConfig,
    UDHRContConfig,
    evaluate_udhr_continuation,
    perplexity,
)
from babelmoe.evaluate.masked import MaskedEvalConfig, MaskedFFNs, masked_ffns, masked_perplexities
from babelmoe.experts.partition import Partition
from babelmoe.models.loading import LoadedModel, ModelSpec, as_loaded
from babelmoe.plots.sweep import plot_curves, plot_specificity
from babelmoe.plots.sweep_sections import section_html, section_lead
from babelmoe.profile.artifact import ProfileData
from babelmoe.prune.sweep import DENSE, SweepConfig, job_selection, plan_jobs, row_key
from babelmoe.prune.targets import language_names, resolve_languages

if TYPE_CHECKING:
    from babelmoe.evaluate.harness import HarnessConfig

logger = logging.getLogger(__name__)

ROWS_FILE = artifacts.SWEEP_ROWS_FILE


def _measure(
    loaded: LoadedModel, lang: str, texts: list[str], config: SweepConfig
) -> dict[str, Any]:
    ppl = perplexity(
        loaded.model,
        loaded.tokenizer,
        texts,
        PerplexityConfig(max_length=config.max_length, batch_size=config.batch_size),
        desc=f"perplexity {lang}",
    )
    row: dict[str, Any] = {
        "ppl": ppl.ppl,
        "nll_sum": ppl.nll_sum,
        "n_tokens": ppl.n_tokens,
        "bits_per_byte": ppl.bits_per_byte,
    }
    if config.udhr_cont:
        result = evaluate_udhr_continuation(
            loaded.model,
            loaded.tokenizer,
            texts,
            lang,
            UDHRContConfig(segment="sentence"),
            MultipleChoiceConfig(batch_size=config.batch_size, max_length=config.max_length),
        )
        row.update(
            udhr_acc=result.metrics["acc"],
            udhr_acc_norm=result.metrics["acc_norm"],
            udhr_n=result.metrics["n"],
        )
    return row


def _pruned_fields(selection, sizes) -> dict[str, Any]:
    if selection is None:
        return {"experts_removed": 0, "expert_rate": 0.0, "neurons_removed": 0, "neuron_rate": 0.0}
    removed = int(sizes[selection.drop].sum())
    return {
        "experts_removed": selection.n_dropped,
        "expert_rate": selection.rate,
        "neurons_removed": removed,
        "neuron_rate": removed / sizes.sum().item(),
    }


def run_jobs(
    loaded: LoadedModel,
    partition: Partition,
    profile: ProfileData,
    documents: dict[str, list[str]],
    config: SweepConfig,
    done: dict[tuple, dict[str, Any]] | None = None,
    on_rows: Callable[[dict[str, Any]], None] | None = None,
    harness: HarnessConfig | None = None,
    eval_config: MaskedEvalConfig | None = None,
    timings: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run the sweep's jobs on ``documents`` (``{language name: held-out texts}``); skip rows in
    ``done``; call ``on_rows`` with each new row; with ``harness``, run its tasks once per pruned
    model. Returns every row (old and new).

    Every configuration is a mask on the one loaded model (``babelmoe.evaluate.masked``): no
    weight is cut or copied. Perplexity alone (the default) pools the windows of every
    configuration of one ratio (the dense model first) into shared batches, several
    configurations per forward; a row's ``seconds`` is then its share (by tokens) of its
    group's time. With UDHR-Cont or harness tasks each configuration runs in turn.
    ``timings`` (a dict) receives where the time went."""
    done = dict(done or {})
    timings = timings if timings is not None else {}
    began = time.perf_counter()
    sizes = partition.sizes()  # [L, E]
    todo: list[tuple[dict[str, Any], list[str], Any]] = []  # (row base, languages, selection)
    for job in plan_jobs(config, list(documents)):
        base = {"method": job.method, "ratio": job.ratio, "seed": job.seed, "target": job.target}
        langs = [
            lang for lang in job.eval_langs if row_key({**base, "eval_lang": lang}) not in done
        ]
        if langs:
            todo.append((base, langs, job_selection(job, profile)))
    timings["configurations"] = len(todo)
    if not todo:
        return list(done.values())
    drops = [None if selection is None else selection.drop for _, _, selection in todo]
    with masked_ffns(loaded.model, partition, drops) as masks:
        timings["masks_s"] = time.perf_counter() - began
        if config.udhr_cont or harness is not None:
            measure_tasks = _harness_measure(loaded, harness) if harness is not None else None
            for index, (base, langs, selection) in enumerate(
                tqdm(todo, desc="sweep", unit="model", disable=None)
            ):
                start = time.perf_counter()
                masks.use(index)
                pruned = _pruned_fields(selection, sizes)
                tasks = {"harness": measure_tasks()} if measure_tasks is not None else {}
                for lang in langs:
                    t0 = time.perf_counter()
                    row = {**base, "eval_lang": lang, **pruned, **tasks}
                    row.update(_measure(loaded, lang, documents[lang], config))
                    row["seconds"] = time.perf_counter() - t0
                    done[row_key(row)] = row
                    if on_rows is not None:
                        on_rows(row)
                logger.debug(
                    "%s r=%g seed=%s target=%s: %d language(s) in %.1fs",
                    base["method"],
                    base["ratio"],
                    base["seed"],
                    base["target"],
                    len(langs),
                    time.perf_counter() - start,
                )
        else:
            _pooled(
                loaded, masks, todo, documents, config, sizes, done, on_rows, eval_config, timings
            )
    timings["total_s"] = time.perf_counter() - began
    return list(done.values())


def _pooled(
    loaded: LoadedModel,
    masks: MaskedFFNs,
    todo: list[tuple[dict[str, Any], list[str], Any]],
    documents: dict[str, list[str]],
    config: SweepConfig,
    sizes,
    done: dict[tuple, dict[str, Any]],
    on_rows: Callable[[dict[str, Any]], None] | None,
    eval_config: MaskedEvalConfig | None,
    timings: dict[str, Any],
) -> None:
    """Perplexity of every (configuration, language) of ``todo``, one pool of batches per ratio
    (the dense model with the first; rows written after each pool: an interrupted sweep loses
    at most one ratio), the decoder layers compiled once for all pools when that pays
    (``MaskedEvalConfig.should_compile``)."""
    from babelmoe.evaluate.encoding import encode
    from babelmoe.profile.core import compiled_layers

    ppl_config = PerplexityConfig(max_length=config.max_length, batch_size=config.batch_size)
    eval_config = eval_config or MaskedEvalConfig()
    tokens = {
        lang: sum(len(encode(loaded.tokenizer, text)) for text in documents[lang])
        for lang in dict.fromkeys(lang for _, langs, _ in todo for lang in langs)
    }
    positions = sum(tokens[lang] for _, langs, _ in todo for lang in langs)  # about
    compile_ = eval_config.should_compile(loaded.device, positions)
    timings["compiled"] = compile_
    with compiled_layers(loaded.model, compile_) as report:
        _passes(
            loaded,
            masks,
            todo,
            documents,
            ppl_config,
            sizes,
            done,
            on_rows,
            eval_config,
            timings,
            compile_,
        )
    timings["graphs"], timings["limit_hits"] = report.graphs, report.limit_hits


def _passes(
    loaded: LoadedModel,
    masks: MaskedFFNs,
    todo: list[tuple[dict[str, Any], list[str], Any]],
    documents: dict[str, list[str]],
    ppl_config: PerplexityConfig,
    sizes,
    done: dict[tuple, dict[str, Any]],
    on_rows: Callable[[dict[str, Any]], None] | None,
    eval_config: MaskedEvalConfig,
    timings: dict[str, Any],
    compiled: bool,
) -> None:
    groups: dict[float, list[int]] = {}
    for index, (base, _, _) in enumerate(todo):
        groups.setdefault(float(base["ratio"]), []).append(index)
    if len(groups) > 1 and 0.0 in groups:  # the dense model is too small a pool on its own
        dense = groups.pop(0.0)
        first = next(iter(groups))
        groups[first] = dense + groups[first]
    passes = []
    for ratio, members in groups.items():
        pairs = [(i, lang) for i in members for lang in todo[i][1]]
        results, spent = masked_perplexities(
            loaded.model,
            loaded.tokenizer,
            masks,
            documents,
            pairs,
            ppl_config,
            eval_config,
            desc=f"sweep r={ratio:g}",
            compiled=compiled,
        )
        passes.append(spent.as_dict())
        seconds = spent.plan_s + spent.total_s
        for (i, lang), result in zip(pairs, results, strict=True):
            base, _, selection = todo[i]
            row = {**base, "eval_lang": lang, **_pruned_fields(selection, sizes)}
            row.update(
                ppl=result.ppl,
                nll_sum=result.nll_sum,
                n_tokens=result.n_tokens,
                bits_per_byte=result.bits_per_byte,
                seconds=seconds * result.n_tokens / max(1, spent.tokens),
            )
            done[row_key(row)] = row
            if on_rows is not None:
                on_rows(row)
    timings["passes"] = passes
    for key in ("tokens", "positions", "batches", "plan_s", "first_batch_s", "total_s"):
        timings[f"eval_{key}"] = sum(p[key] for p in passes)


def _harness_measure(
    loaded: LoadedModel, config: HarnessConfig
) -> Callable[[], dict[str, dict[str, float]]]:
    """A function running the harness tasks on the model as it is now: ``{task: metrics}``."""
    from babelmoe.evaluate.harness import harness_lm, run_harness

    lm = harness_lm(loaded.model, loaded.tokenizer, config)

    def measure() -> dict[str, dict[str, float]]:
        result = run_harness(loaded.model, loaded.tokenizer, config, lm=lm)
        return {
            (r.task if r.lang == "all" else f"{r.task}.{r.lang}"): {
                k: v for k, v in r.metrics.items() if isinstance(v, int | float)
            }
            for r in result.task_results()
        }

    return measure


def sweep_identity(
    config: SweepConfig, partition: Partition, profile: ProfileData, model: dict
) -> dict:
    """What must match for saved rows to be reused."""
    return {
        "config": asdict(config),
        "partition_sha256": partition.sha256,
        "profile_sha256": profile.meta.get("tensors_sha256"),
        "model": model,
    }


def read_rows(path: Path, identity: dict[str, Any], force: bool) -> dict[tuple, dict[str, Any]]:
    """Rows of an earlier run of the same sweep (empty when none, or with ``force``)."""
    if force or not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    header = artifacts.jsonl_header(lines)
    if header.get("identity") != artifacts.jsonable(identity):
        from babelmoe.stages.sweep_resume import changed_tasks, moved_tasks_only

        old, new = header.get("identity") or {}, artifacts.jsonable(identity)
        changed = changed_tasks(old, new)
        if moved_tasks_only(old, new):
            logger.info("%s: task files moved, same contents: resuming", path)
        elif changed:
            logger.warning(
                "%s: task %s changed since its rows were evaluated: recomputing them",
                path,
                ", ".join(changed),
            )
            return {}
        else:
            raise BabelmoeError(
                f"{path} holds rows of a different sweep",
                f"pass {setting('force')} to start over, or use another run folder",
            )
    rows = {}
    for row in artifacts.jsonl_records(lines[1:]):
        if isinstance(row, dict):
            try:
                rows[row_key(row)] = row
            except (KeyError, TypeError, ValueError):  # not a row of ours: evaluated again
                continue
    logger.info("resuming: %d rows already in %s", len(rows), path)
    return rows


def start_rows(path: Path, identity: dict[str, Any], rows: dict[tuple, dict[str, Any]]) -> None:
    """(Re)write the rows file: the identity header, then the rows kept."""
    lines = [json.dumps({"identity": artifacts.jsonable(identity)})]
    lines += [json.dumps(r, allow_nan=True) for r in rows.values()]
    artifacts.atomic_write_text(path, "\n".join(lines) + "\n")


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append a finished row (flushed) so an interruption loses at most one evaluation."""
    try:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, allow_nan=True) + "\n")
            handle.flush()
    except OSError as exc:  # a full disk names no file
        raise artifacts.named_os_error(exc, path) from None


def run_sweep(
    config: SweepConfig,
    run_dir: Path,
    *,
    model: LoadedModel | ModelSpec,
    force: bool = False,
    harness: HarnessConfig | None = None,
    eval_config: MaskedEvalConfig | None = None,
) -> Path:
    """The sweep on ``run_dir``'s held-out text with ``model`` (a spec loads once the lock is
    held and the run's artifacts are read); writes ``RUN/sweep/``;
    ``harness``: lm-eval tasks run on every pruned model too; ``eval_config``: how the masked
    evaluation batches (not part of the sweep's identity: it changes no result beyond float
    rounding). ``sweep.json``'s ``timings`` say where the time went."""
    from babelmoe.experts.partition import check_partition_fits
    from babelmoe.stages.heldout import heldout_documents
    from babelmoe.stages.prune import load_run

    run_dir = Path(run_dir)
    folder = run_dir / artifacts.SWEEP_DIR
    with artifacts.run_lock(folder):
        partition, profile = load_run(run_dir)
        indices = resolve_languages(profile, config.languages) if config.languages else None
        documents = heldout_documents(profile, indices, config.max_documents)
        texts = {name: [d.text for d in docs] for name, docs in documents.items()}
        if harness is not None:  # unknown task names are refused before the model loads
            from babelmoe.evaluate.harness import check_task_names

            check_task_names(harness)
        loaded = as_loaded(model)
        check_partition_fits(partition, loaded.model)
        identity = sweep_identity(config, partition, profile, loaded.identity)
        if harness is not None:  # absent otherwise: earlier sweeps resume unchanged
            from babelmoe.evaluate.harness import harness_fingerprints

            identity["harness"] = {
                "tasks": list(harness.tasks),
                "limit": harness.limit,
                "num_fewshot": harness.num_fewshot,
                "tasks_sha256": harness_fingerprints(harness),  # what was evaluated
            }
        path = folder / ROWS_FILE
        done = read_rows(path, identity, force)
        start_rows(path, identity, done)
        start = time.perf_counter()
        timings: dict[str, Any] = {}
        rows = run_jobs(
            loaded,
            partition,
            profile,
            texts,
            config,
            done,
            on_rows=lambda row: append_row(path, row),
            harness=harness,
            eval_config=eval_config,
            timings=timings,
        )
        seconds = time.perf_counter() - start
        meta = {
            **identity,
            "languages": list(texts),
            "all_languages": language_names(profile),
            "documents": {n: [d.id for d in docs] for n, docs in documents.items()},
            "seconds": seconds,
            "timings": timings,
        }
        return write_report(folder, rows, config, meta)


SECTION_ORDER = 60  # after the analysis sections of the report
CURVES_CAPTION = (
    "Held-out perplexity against the share of experts removed, one panel per language; each "
    "method prunes for the language of its panel. Grey band: lowest to highest of the random "
    "seeds (dashed: their mean). Dotted: the dense model."
)
SPECIFICITY_CAPTION = (
    "Perplexity on the column's language after pruning for the row's language ({method}, ratio "
    "{ratio:g}), relative to the dense model. Bold: the diagonal (pruned for itself)."
)


HARNESS_CSV = "harness.csv"
HARNESS_FIELDS = ("method", "ratio", "seed", "target", "task", "metric", "value")


def _harness_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per pruned model, harness task and metric (the model's rows share them)."""
    table: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        model = {k: row[k] for k in ("method", "ratio", "seed", "target")}
        for task, metrics in (row.get("harness") or {}).items():
            for metric, value in metrics.items():
                key = (*map(str, model.values()), task, metric)
                table.setdefault(key, {**model, "task": task, "metric": metric, "value": value})
    return list(table.values())


def _harness_html(harness_rows: Sequence[dict[str, Any]]) -> str:
    """The harness numbers as an HTML table (accuracy-like metrics, no stderr)."""
    import html

    shown = [r for r in harness_rows if r["metric"] in ("acc", "acc_norm", "exact_match")]
    if not shown:
        return ""
    cells = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(r[k]))}</td>"
            for k in ("method", "ratio", "seed", "target", "task", "metric")
        )
        + f"<td>{r['value']:.3f}</td></tr>"
        for r in shown
    )
    head = "".join(f"<th>{k}</th>" for k in (*HARNESS_FIELDS[:-1], "value"))
    return (
        "<h3>lm-evaluation-harness tasks</h3>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>"
    )


def _csv(rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in fields})
    return buffer.getvalue()


def write_report(
    folder: Path, rows: list[dict[str, Any]], config: SweepConfig, meta: dict[str, Any]
) -> Path:
    """Write every file of the module docstring into ``folder``; return ``sweep.json``."""
    langs = list(meta["languages"])
    rows = sorted(
        rows,
        key=lambda r: (
            r["ratio"],
            r["method"] != DENSE,
            r["method"],
            str(r["seed"]),
            str(r["target"]),
            langs.index(r["eval_lang"]),
        ),
    )
    points = curves(rows, config, langs)
    judged = verdicts(points, config, langs)
    matrix = specificity(rows, config, langs)
    run_dir = folder.parent
    captioned = [(f, CURVES_CAPTION) for f in plot_curves(points, config, langs, folder / "curves")]
    if matrix is not None:
        caption = SPECIFICITY_CAPTION.format(method=matrix["method"], ratio=matrix["ratio"])
        captioned += [(f, caption) for f in plot_specificity(matrix, folder / "specificity")]
    figures = [str(Path(f).relative_to(run_dir)) for f, _ in captioned]
    artifacts.atomic_write_text(folder / "sweep.csv", _csv(rows, ROW_FIELDS))
    artifacts.atomic_write_text(folder / "curves.csv", _csv(points, CURVE_FIELDS))
    harness_rows = _harness_rows(rows)
    if harness_rows:
        artifacts.atomic_write_text(folder / HARNESS_CSV, _csv(harness_rows, HARNESS_FIELDS))
    summary = {
        "schema_version": artifacts.SCHEMA_VERSION,
        "kind": "prune_sweep",
        **meta,
        "row_seconds": sum(float(r.get("seconds", 0.0)) for r in rows),
        "rows": rows,
        "curves": points,
        "verdicts": judged,
        "pair_verdicts": pair_verdicts(judged),
        "specificity": matrix,
        "figures": figures,
        "harness": harness_rows,
    }
    path = folder / artifacts.SWEEP_FILE
    artifacts.atomic_write_json(path, artifacts.finite_json(summary))
    lead = section_lead(judged, matrix)
    section = {
        "title": "Pruning sweep",
        "lead": lead,
        "details": [
            {
                "summary": "Perplexities, verdicts against random, specificity",
                "html": section_html(judged, matrix, config, meta, rows)
                + _harness_html(harness_rows),
            }
        ],
        "figures": [
            {"path": p, "caption": f"{lead} {c}" if i == 0 and lead else c}
            for i, (p, (_, c)) in enumerate(zip(figures, captioned, strict=True))
        ],
        "order": SECTION_ORDER,
        "schema_version": artifacts.SCHEMA_VERSION,
    }
    artifacts.atomic_write_json(folder / artifacts.SECTION_FILE, section)
    return path
