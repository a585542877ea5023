"""``babelmoe steer``: silence and steer languages through their experts; writes RUN/interventions/.

``run_steer(config, run_dir, model=...)`` (also the notebook entry point) reads the run's partition
and profile, picks every language's experts (``interventions.selection``), then

1. the silencing matrix (``interventions.silence``): held-out perplexity of every language B with
   A's experts off, and with random experts of the same per-layer counts (``random_seeds``);
2. steering (``interventions.steering``): greedy continuations of prompts in every B with A's
   experts amplified by each factor, against the unmodified model and random experts;

and writes into ``RUN/interventions/``:

- ``selection.safetensors/.json``: ``own`` [n_lang, L, E] bool (each language's experts) and
  ``random`` [n_seeds, n_lang, L, E] bool, with the rule, k, scope and per-layer counts;
- ``rows.jsonl``: one perplexity or continuation per line (an interrupted run resumes there);
- ``interventions.json``: the summaries (schema version, identity, config, timings);
- ``silencing.csv``, ``steering.csv``, ``continuations.jsonl``, figures, ``report_section.json``.
"""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from babelmoe import artifacts
from babelmoe.errors import BabelmoeError, setting
from babelmoe.evaluate.perplexity import PerplexityConfig
from babelmoe.experts.masks import selection_scales
from babelmoe.interventions import langid
from babelmoe.interventions import silence as sil
from babelmoe.interventions import steering as st
from babelmoe.interventions.selection import (
    null_groups,
    random_like,
    select_language_experts,
)
from babelmoe.models.loading import LoadedModel, ModelSpec, as_loaded
from babelmoe.stages.config import SteerConfig

logger = logging.getLogger(__name__)

FOLDER = "interventions"
SELECTION = "selection"
ROWS_FILE = "rows.jsonl"
SUMMARY_FILE = "interventions.json"
SECTION_ORDER = 70


def contrast_indices(n_profiled: int, indices: list[int], config: SteerConfig) -> list[int]:
    """Profile indices of the languages the selection rule compares each language with
    (``config.contrast``): every profiled one, or only the steered ones (``indices``)."""
    return list(indices) if config.contrast == "steered" else list(range(n_profiled))


def select_all(profile, indices: list[int], config: SteerConfig) -> dict[str, torch.Tensor]:
    """``own`` [n, L, E] and ``random`` [n_seeds, n, L, E] bool selections of the languages at
    ``indices``, each scored against the languages of ``contrast_indices`` (random sets keep
    each language's per-layer counts; equal counts and seed give the same set, see
    ``null_groups``)."""
    pool = contrast_indices(profile.frequency.shape[0], indices, config)
    frequency = profile.frequency[pool]
    own = torch.stack(
        [select_language_experts(frequency, pool.index(i), config.selection) for i in indices]
    )
    seeds = sorted(set(config.random_seeds) | set(config.steer_seeds))
    random = torch.zeros((len(seeds), *own.shape), dtype=torch.bool)
    for s, seed in enumerate(seeds):
        for j in range(len(indices)):
            random[s, j] = random_like(own[j], seed if config.shared_null else seed * 1_000_003 + j)
    return {"own": own, "random": random, "seeds": torch.tensor(seeds, dtype=torch.long)}


def _read_rows(path: Path, identity: dict[str, Any], force: bool) -> dict[str, dict[str, Any]]:
    if force or not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    header = artifacts.jsonl_header(lines)
    if header.get("identity") != artifacts.jsonable(identity):
        raise BabelmoeError(
            f"{path} holds rows of a different steer run",
            f"pass {setting('force')} to start over, or use another run folder",
        )
    rows = {row["key"]: row for row in artifacts.jsonl_records(lines[1:])}
    logger.info("resuming: %d rows already in %s", len(rows), path)
    return rows


def _write_rows(path: Path, identity: dict[str, Any], rows: dict[str, dict]) -> None:
    lines = [json.dumps({"identity": artifacts.jsonable(identity)})]
    lines += [json.dumps(r, allow_nan=True, ensure_ascii=False) for r in rows.values()]
    artifacts.atomic_write_text(path, "\n".join(lines) + "\n")


def _append(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, allow_nan=True, ensure_ascii=False) + "\n")
        handle.flush()


def run_steer(
    config: SteerConfig | None,
    run_dir: Path,
    *,
    model: LoadedModel | ModelSpec | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Silence and steer every language of ``run_dir`` through its experts (module docstring).

    ``model``: a loaded model, or the spec of one (default: the bundled model), loaded once
    the run's artifacts are read and checked. Returns the summary written to
    ``RUN/interventions/interventions.json``."""
    from babelmoe.experts.partition import check_partition_fits
    from babelmoe.prune.targets import language_names, resolve_languages
    from babelmoe.stages.heldout import heldout_documents
    from babelmoe.stages.prune import load_run

    config = config or SteerConfig()
    run_dir = Path(run_dir)
    folder = run_dir / FOLDER
    with artifacts.run_lock(folder):
        partition, profile = load_run(run_dir)
        all_names = language_names(profile)
        indices = (
            resolve_languages(profile, config.languages)
            if config.languages
            else list(range(len(all_names)))
        )
        if len(indices) < 2:
            raise BabelmoeError(
                "steer needs at least two languages", f"pass {setting('languages')} en,fr"
            )
        names = [all_names[i] for i in indices]
        contrast = [all_names[i] for i in contrast_indices(len(all_names), indices, config)]
        if config.contrast == "profiled" and len(contrast) > len(names):
            logger.info(
                "selection (%s) compares each language with all %d profiled languages, not "
                "only the %d steered (contrast='steered': those alone)",
                config.rule,
                len(contrast),
                len(names),
            )
        labels = (
            dict(
                zip(
                    names,
                    langid.labels_for([profile.languages[i] for i in indices], names),
                    strict=True,
                )
            )
            if config.steering
            else {}
        )
        chosen = select_all(profile, indices, config)
        seeds = chosen["seeds"].tolist()
        groups = (
            null_groups(chosen["own"], names)
            if config.shared_null
            else {n: f"random~{n}" for n in names}
        )
        documents = heldout_documents(profile, indices)
        texts = {
            n: [d.text for d in docs[: config.max_documents or None]]
            for n, docs in documents.items()
        }
        prompts = (
            st.steering_prompts(documents, config.prompts, config.neutral)
            if config.steering
            else []
        )
        loaded = as_loaded(model if model is not None else ModelSpec())
        check_partition_fits(partition, loaded.model)
        recorded = asdict(config)
        for name in ("shared_null", "keep_language", "chat", "contrast"):
            # absent when at its default: earlier runs resume unchanged
            if getattr(config, name) == SteerConfig.__dataclass_fields__[name].default:
                del recorded[name]
        identity = {
            "config": recorded,
            "partition_sha256": partition.sha256,
            "profile_sha256": profile.meta.get("tensors_sha256"),
            "model": loaded.identity,
            "languages": names,
        }
        counts = chosen["own"].sum(2)  # [n, L]
        artifacts.save_artifact(
            folder,
            SELECTION,
            chosen,
            {
                **identity,
                "selection": asdict(config.selection),
                "contrast_languages": contrast,
                "experts_per_layer": {n: counts[j].tolist() for j, n in enumerate(names)},
                "experts_total": {n: int(counts[j].sum()) for j, n in enumerate(names)},
                "random_seeds": seeds,
                "null_groups": groups,
            },
            kind="intervention_selection",
        )
        path = folder / ROWS_FILE
        done = _read_rows(path, identity, force)
        reused = len(done)
        _write_rows(path, identity, done)
        timings: dict[str, float] = {}

        def own_scales(name: str, factor: float) -> torch.Tensor:
            return selection_scales(chosen["own"][names.index(name)], factor)

        def random_scales(group: str, seed: int, factor: float) -> torch.Tensor:
            first = names.index(group.split("~", 1)[1])  # the group's first language
            return selection_scales(chosen["random"][seeds.index(seed), first], factor)

        if config.silencing:
            start = time.perf_counter()
            ppl_config = PerplexityConfig(
                max_length=config.max_length, batch_size=config.batch_size
            )
            for condition, target, seed in sil.plan(names, config.random_seeds, groups):
                if condition == sil.DENSE:
                    scales = None
                elif condition == sil.OWN:
                    scales = own_scales(target, 0.0)
                else:
                    scales = random_scales(target, seed, 0.0)
                todo_langs = [
                    b for b in names if sil.row_key(condition, target, seed, b) not in done
                ]
                if not todo_langs:
                    continue
                results = sil.masked_perplexities(
                    loaded.model,
                    loaded.tokenizer,
                    partition,
                    {b: texts[b] for b in todo_langs},
                    scales,
                    ppl_config,
                    desc=f"ppl ({condition} {target or ''} {'' if seed is None else seed})",
                )
                new_rows = []
                for b, result in results.items():
                    key = sil.row_key(condition, target, seed, b)
                    row = {
                        "key": key,
                        "kind": "silence",
                        "condition": condition,
                        "target": target,
                        "seed": seed,
                        "eval_lang": b,
                        "ppl": result.ppl,
                        "nll_sum": result.nll_sum,
                        "n_tokens": result.n_tokens,
                    }
                    done[key] = row
                    new_rows.append(row)
                _append(path, new_rows)
            timings["silencing_s"] = time.perf_counter() - start
        if config.steering:
            start = time.perf_counter()
            items = st.plan_items(
                prompts,
                names,
                config.factors,
                config.steer_seeds,
                groups,
                config.silence_source,
                config.keep_language,
            )
            todo = [it for it in items if it.key not in done]

            def scales_of(item: st.Item) -> torch.Tensor | None:
                if item.condition == st.DENSE:
                    return None
                if item.condition == st.OWN:
                    s = own_scales(item.target, item.factor)
                else:
                    s = random_scales(item.target, item.seed, item.factor)
                if item.silence_source:
                    s = s * own_scales(item.prompt.lang, 0.0)
                return s

            def on_rows(rows: list[dict[str, Any]]) -> None:
                for r in rows:
                    r["kind"] = "steer"
                    done[r["key"]] = r
                _append(path, rows)

            logger.info("steering: %d continuations (%d to go)", len(items), len(todo))
            st.run_items(
                loaded.model,
                loaded.tokenizer,
                partition,
                todo,
                scales_of,
                config.generation,
                on_rows,
                score_batch_size=config.batch_size,
            )
            timings["steering_s"] = time.perf_counter() - start
        summary: dict[str, Any] = {
            "schema_version": artifacts.SCHEMA_VERSION,
            "kind": "interventions",
            **identity,
            "selection": asdict(config.selection),
            "contrast_languages": contrast,
            "experts_per_language": {n: int(counts[j].sum()) for j, n in enumerate(names)},
            "timings": timings,  # this invocation's (rows_reused came from an earlier one)
            "rows_reused": reused,
        }
        if config.silencing:
            rows = {k: r for k, r in done.items() if r.get("kind") == "silence"}
            blocks = {
                key: [profile.languages[i].get(key) for i in indices]
                for key in ("family", "genus", "script")
            }
            summary["silencing"] = sil.silencing_summary(
                rows,
                names,
                config.random_seeds,
                groups,
                n_perm=config.n_perm,
                blocks=blocks,
                seed=config.seed,
            )
        if config.steering:
            rows_s = [r for r in done.values() if r.get("kind") == "steer"]
            planned = {it.key for it in items}
            rows_s = [r for r in rows_s if r["key"] in planned]
            if config.keep_language:
                summary["fidelity"] = st.fidelity_summary(
                    rows_s, names, labels, config.factors, groups
                )
            summary["steering"] = st.steering_summary(
                rows_s,
                names,
                labels,
                config.factors,
                config.steer_seeds,
                groups,
                config.silence_source,
            )
            summary["n_prompts"] = {
                lang: sum(p.lang == lang for p in prompts) for lang in [*names, st.NEUTRAL]
            }
            _write_jsonl(folder / "continuations.jsonl", rows_s)
        summary["findings"] = findings(summary)
        _write_outputs(folder, summary)
    logger.info("wrote %s", folder)
    return summary


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, allow_nan=True, ensure_ascii=False) + "\n" for r in rows)
    artifacts.atomic_write_text(path, text)


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    fields = list(dict.fromkeys(k for r in rows for k in r))
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _fmt(x: float, digits: int = 2) -> str:
    return "nan" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def findings(summary: dict[str, Any]) -> list[str]:
    """The headline sentences of a summary."""
    out = []
    sil_block = summary.get("silencing")
    if sil_block:
        d = sil_block["own_dominance"]
        text = (
            f"Silencing a language's {summary['selection']['k']} experts per layer "
            f"({summary['selection']['rule']}) raises its own perplexity by a mean log-ratio "
            f"{_fmt(d['statistic'], 3)} more than the other languages' (diagonal dominance; "
            f"permutation p = {_fmt(d['p_value'], 4)})"
        )
        if "random_dominance_mean" in sil_block:
            if "random_dominance_note" not in sil_block:
                text += (
                    f"; random experts of the same per-layer counts give "
                    f"{_fmt(sil_block['random_dominance_mean'], 3)} on average (max "
                    f"{_fmt(sil_block['random_dominance_max'], 3)})"
                )
            text += (
                f"; a language's own experts hurt"
                f" it more than every random set of the same size for "
                f"{sil_block['share_own_beats_every_random']:.0%} of the languages (sign test "
                f"p = {_fmt(sil_block['own_beats_every_random_p'], 4)})"
            )
        out.append(text + ".")
        out += _over_languages_findings(sil_block)
    fidelity = summary.get("fidelity")
    if fidelity:
        for point in fidelity["points"]:
            what = (
                "unmodified"
                if point["condition"] == "dense"
                else f"{point['condition']} experts x{point['factor']:g}"
            )
            out.append(
                f"Answers entirely in the prompt's language ({what}): "
                f"{_fmt(100 * point['pass_rate'], 1)}% ({_fmt(100 * point['pass_lo'], 1)}-"
                f"{_fmt(100 * point['pass_hi'], 1)}%) of {fidelity['n_prompts']} prompts; lines in "
                f"it {_fmt(100 * point['line_share'], 1)}%."
            )
    steer_block = summary.get("steering")
    if steer_block:
        for point in steer_block["by_factor"]:
            if point.get("silence_source"):
                continue
            text = (
                f"Amplifying a language's experts x{point['factor']:g}: "
                f"{_fmt(100 * point['share_own'], 1)}% of continuations of prompts not in the "
                f"target language (neutral ones included) are identified as it "
                f"({_fmt(100 * point['share_own_lo'], 1)}-{_fmt(100 * point['share_own_hi'], 1)}%)"
                f", unmodified model {_fmt(100 * point['share_dense'], 1)}%"
            )
            if "share_random" in point:
                text += f", random experts {_fmt(100 * point['share_random'], 1)}%"
            text += (
                f"; fluency (unmodified model's log-likelihood per token) "
                f"{_fmt(point['loglik'])} against {_fmt(steer_block['dense_loglik'])} "
                f"unsteered, repetition {_fmt(point['repetition'])}."
            )
            out.append(text)
    return out


def _over_languages_findings(block: dict[str, Any]) -> list[str]:
    """The silencing dominance as a claim about languages: its interval over languages, its
    restricted permutations and the spillover to relatives."""
    interval = block.get("own_dominance_interval")
    if not interval:
        return []
    text = (
        f"Over the {len(block['languages'])} languages, the dominance's "
        f"{interval['level']:.0%} bootstrap interval over languages is "
        f"[{_fmt(interval['lo'], 3)}, {_fmt(interval['hi'], 3)}]"
    )
    for test in block.get("own_dominance_restricted", []):
        if test["feasible"]:
            text += (
                f"; with languages relabeled only within a {test['within']} p = "
                f"{_fmt(test['p_value'], 4)} (own minus the relatives' mean log-ratio, mean "
                f"over the {test['n_with_relatives']} languages with a relative, "
                f"{_fmt(test['relatives'], 3)} [{_fmt(test['relatives_lo'], 3)}, "
                f"{_fmt(test['relatives_hi'], 3)}], positive for "
                f"{test['share_above_relatives']:.0%} of them)"
            )
        else:
            text += f"; within a {test['within']}: {test['note']}"
    out = [text + "."]
    spill = [s for s in block.get("spillover", []) if s["feasible"]]
    if spill:
        parts = [
            f"same {s['within']} {_fmt(s['statistic'], 3)} [{_fmt(s['lo'], 3)}, "
            f"{_fmt(s['hi'], 3)}], p = {_fmt(s['p_value'], 4)} (beyond row and column effects "
            f"{_fmt(s['adjusted_statistic'], 3)}, p = {_fmt(s['adjusted_p_value'], 4)})"
            for s in spill
        ]
        out.append(
            "Spillover (mean log-ratio on the silenced language's relatives minus on the other "
            "languages): " + "; ".join(parts) + "."
        )
    return out


def _write_outputs(folder: Path, summary: dict[str, Any]) -> None:
    from babelmoe.plots.base import save_figure
    from babelmoe.plots.interventions import silencing_figure, steering_figure

    figures = []
    block = summary.get("silencing")
    if block:
        rows = []
        for i, a in enumerate(block["languages"]):
            for j, b in enumerate(block["languages"]):
                rows.append({"silenced": a, "eval_lang": b, "ratio": block["own_ratio"][i][j]})
        artifacts.atomic_write_text(folder / "silencing.csv", _csv(rows))
        png, _ = save_figure(silencing_figure(block), folder / artifacts.FIGURES_DIR, "silencing")
        figures.append(
            {
                "path": str(png.relative_to(folder)),
                "caption": (
                    "Held-out perplexity of the column's language with the row language's experts "
                    "switched off, relative to the dense model (first panel), and with random "
                    "experts of the same per-layer counts (second, mean over seeds; side by "
                    "side up to 20 languages, stacked beyond); languages of one family sit "
                    "together, lines between families."
                ),
            }
        )
    if summary.get("fidelity"):
        artifacts.atomic_write_text(folder / "fidelity.csv", _csv(summary["fidelity"]["points"]))
    sblock = summary.get("steering")
    if sblock and sblock["cells"]:
        artifacts.atomic_write_text(folder / "steering.csv", _csv(sblock["cells"]))
        if sblock["by_factor"]:
            png, _ = save_figure(
                steering_figure(sblock), folder / artifacts.FIGURES_DIR, "steering"
            )
            figures.append(
                {
                    "path": str(png.relative_to(folder)),
                    "caption": (
                        "Steering success (share of continuations of prompts not in the target "
                        "language identified as it, 95% bootstrap interval over "
                        "prompts) against fluency (the unmodified model's mean log-likelihood "
                        "per continuation token), by factor; target experts and random experts "
                        "of the same size. The star is the unmodified model."
                    ),
                }
            )
    summary["figures"] = [f["path"] for f in figures]
    artifacts.atomic_write_json(folder / SUMMARY_FILE, artifacts.finite_json(summary))
    parts = [f"<p>{html.escape(t)}</p>" for t in summary["findings"]]
    tables = []
    if block:
        tables.append(
            {"path": "silencing.csv", "title": "Silencing: perplexity / dense", "max_rows": 100}
        )
    if summary.get("fidelity"):
        tables.append({"path": "fidelity.csv", "title": "Answers staying in the prompt's language"})
    if sblock and sblock["cells"]:
        tables.append(
            {
                "path": "steering.csv",
                "title": "Steering per (target, prompt language, factor)",
                "max_rows": 100,
            }
        )
    section = {
        "schema_version": artifacts.SCHEMA_VERSION,
        "title": "Interventions: silencing and steering languages through their experts",
        "order": SECTION_ORDER,
        "html": "".join(parts),
        "figures": figures,
        "tables": tables,
    }
    artifacts.atomic_write_json(folder / artifacts.SECTION_FILE, section)
