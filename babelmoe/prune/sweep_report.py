"""Sweep rows -> curves, verdicts, the specificity matrix, tables, plots and the report section.

Written into ``RUN/sweep/``:

  sweep.csv            the tidy table: one row per (method, ratio, seed, target, eval_lang)
  curves.csv           per (eval_lang, method, ratio): the method's perplexity on its own target
                       language, or random's mean / std / min / max over seeds, or dense
  sweep.json           schema_version, config, identity, rows, curves, verdicts (per method),
                       pair_verdicts (per language and ratio, the best frequency-guided
                       method), specificity, timing
  curves.{png,svg}     perplexity vs ratio per language, random as a band
  specificity.{png,svg} the prune-for-A, evaluate-on-B matrix
  report_section.json  the report hook (``babelmoe.plots.report``): title, html, figures with
                       captions (paths relative to the run folder), order, schema_version

Verdict per (language, ratio, method): ``beats random`` when the method's perplexity is below
the *lowest* perplexity of the random seeds, ``worse than random`` when above the highest,
else ``within random spread``. With three seeds this is a descriptive criterion, not a
significance test (one seed in four would land below three others by chance).
"""

from __future__ import annotations

import csv
import html
import io
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from babelmoe import artifacts
from babelmoe.prune.criteria import FREQUENCY_METHODS
from babelmoe.prune.evaluation import finite_json
from babelmoe.prune.sweep import DENSE, RANDOM, SweepConfig

ROW_FIELDS = (
    "method",
    "ratio",
    "seed",
    "target",
    "eval_lang",
    "ppl",
    "nll_sum",
    "n_tokens",
    "bits_per_byte",
    "udhr_acc",
    "udhr_acc_norm",
    "udhr_n",
    "experts_removed",
    "expert_rate",
    "neurons_removed",
    "neuron_rate",
    "seconds",
)
CURVE_FIELDS = (
    "eval_lang",
    "method",
    "ratio",
    "ppl",
    "ppl_std",
    "ppl_min",
    "ppl_max",
    "n_seeds",
    "udhr_acc",
    "neuron_rate",
)
BEATS, WITHIN, WORSE = "beats random", "within random spread", "worse than random"
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


def curves(
    rows: Sequence[dict[str, Any]], config: SweepConfig, langs: Sequence[str]
) -> list[dict[str, Any]]:
    """Per (eval_lang, method, ratio) one point; random aggregated over its seeds."""
    out = []
    for lang in langs:
        dense = [r for r in rows if r["method"] == DENSE and r["eval_lang"] == lang]
        if dense:
            out.append(_point(lang, DENSE, 0.0, dense))
        for ratio in sorted(config.ratios):
            randoms = [
                r
                for r in rows
                if r["method"] == RANDOM and r["ratio"] == ratio and r["eval_lang"] == lang
            ]
            if randoms:
                out.append(_point(lang, RANDOM, ratio, randoms))
            for method in config.methods:
                own = [
                    r
                    for r in rows
                    if r["method"] == method
                    and r["ratio"] == ratio
                    and r["target"] == lang
                    and r["eval_lang"] == lang
                ]
                if own:
                    out.append(_point(lang, method, ratio, own))
    return out


def _point(lang: str, method: str, ratio: float, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    ppl = [float(r["ppl"]) for r in rows]
    acc = [r["udhr_acc"] for r in rows if r.get("udhr_acc") is not None]
    return {
        "eval_lang": lang,
        "method": method,
        "ratio": ratio,
        "ppl": statistics.fmean(ppl),
        "ppl_std": statistics.pstdev(ppl) if len(ppl) > 1 else 0.0,
        "ppl_min": min(ppl),
        "ppl_max": max(ppl),
        "n_seeds": len(ppl),
        "udhr_acc": statistics.fmean(acc) if acc else None,
        "neuron_rate": statistics.fmean(float(r["neuron_rate"]) for r in rows),
    }


def verdicts(
    points: Sequence[dict[str, Any]], config: SweepConfig, langs: Sequence[str]
) -> list[dict[str, Any]]:
    """Per (language, ratio, method): the method's perplexity against random's seed range."""
    index = {(p["eval_lang"], p["method"], p["ratio"]): p for p in points}
    out = []
    for lang in langs:
        for ratio in sorted(config.ratios):
            rand = index.get((lang, RANDOM, ratio))
            for method in config.methods:
                own = index.get((lang, method, ratio))
                if own is None:
                    continue
                verdict = _verdict(own["ppl"], rand)
                out.append(
                    {
                        "eval_lang": lang,
                        "ratio": ratio,
                        "method": method,
                        "frequency_guided": method in FREQUENCY_METHODS,
                        "ppl": own["ppl"],
                        "random_mean": rand and rand["ppl"],
                        "random_std": rand and rand["ppl_std"],
                        "random_min": rand and rand["ppl_min"],
                        "random_max": rand and rand["ppl_max"],
                        "n_seeds": rand["n_seeds"] if rand else 0,
                        "verdict": verdict,
                    }
                )
    return out


def _verdict(ppl: float, rand: dict[str, Any] | None) -> str | None:
    if rand is None:
        return None
    return BEATS if ppl < rand["ppl_min"] else WORSE if ppl > rand["ppl_max"] else WITHIN


def pair_verdicts(judged: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (language, ratio): does frequency-guided pruning (its best method there) beat random
    beyond the seeds' spread?"""
    best: dict[tuple, dict[str, Any]] = {}
    for v in judged:
        key = (v["eval_lang"], v["ratio"])
        if v["frequency_guided"] and (key not in best or v["ppl"] < best[key]["ppl"]):
            best[key] = v
    return [
        {
            "eval_lang": v["eval_lang"],
            "ratio": v["ratio"],
            "best_method": v["method"],
            "ppl": v["ppl"],
            "random_min": v["random_min"],
            "random_max": v["random_max"],
            "verdict": v["verdict"],
        }
        for v in best.values()
    ]


def specificity(
    rows: Sequence[dict[str, Any]], config: SweepConfig, langs: Sequence[str]
) -> dict[str, Any] | None:
    """The matrix ppl[prune for A][evaluate on B] / dense ppl[B], and whether each language is
    hurt least by pruning for itself (the diagonal is the lowest of its column)."""
    method, ratio = config.matrix_method, config.matrix_ratio
    if method is None:
        return None
    got = {
        (r["target"], r["eval_lang"]): float(r["ppl"])
        for r in rows
        if r["method"] == method and r["ratio"] == ratio
    }
    dense = {r["eval_lang"]: float(r["ppl"]) for r in rows if r["method"] == DENSE}
    if not all((a, b) in got for a in langs for b in langs) or not all(b in dense for b in langs):
        return None
    ppl = [[got[(a, b)] for b in langs] for a in langs]
    relative = [[ppl[i][j] / dense[b] for j, b in enumerate(langs)] for i in range(len(langs))]
    best = {
        b: min(range(len(langs)), key=lambda i, j=j: ppl[i][j]) == j for j, b in enumerate(langs)
    }
    return {
        "method": method,
        "ratio": ratio,
        "targets": list(langs),
        "eval_langs": list(langs),
        "ppl": ppl,
        "relative_to_dense": relative,
        "diagonal_best": best,
        "share_diagonal_best": sum(best.values()) / len(best),
    }


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
    from babelmoe.prune.sweep_plots import plot_curves, plot_specificity

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
    }
    path = folder / "sweep.json"
    artifacts.atomic_write_json(path, finite_json(summary))
    section = {
        "title": "Pruning sweep",
        "html": section_html(judged, matrix, config, meta, rows),
        "figures": [
            {"path": p, "caption": c} for p, (_, c) in zip(figures, captioned, strict=True)
        ],
        "order": SECTION_ORDER,
        "schema_version": artifacts.SCHEMA_VERSION,
    }
    artifacts.atomic_write_json(folder / "report_section.json", section)
    return path


def _fmt(value: float | None) -> str:
    """Two decimals (perplexities from ~1 to ~1000 and their spreads), '–' when missing."""
    return "–" if value is None or not math.isfinite(value) else f"{value:.2f}"


_COLOURS = {BEATS: "#d9f2d9", WORSE: "#f7d4d4", WITHIN: ""}


def _cell(text: str, colour: str = "", bold: bool = False) -> str:
    style = f' style="background:{colour}"' if colour else ""
    return f"<td{style}>{f'<b>{text}</b>' if bold else text}</td>"


def section_html(
    judged: list[dict[str, Any]],
    matrix: dict[str, Any] | None,
    config: SweepConfig,
    meta: dict[str, Any],
    rows: list[dict[str, Any]],
) -> str:
    """The report section: what ran, the verdict table, the specificity matrix."""
    e = html.escape
    langs = meta["languages"]
    tokens = {r["eval_lang"]: r["n_tokens"] for r in rows if r["method"] == DENSE}
    dense = {r["eval_lang"]: r["ppl"] for r in rows if r["method"] == DENSE}
    parts = [
        f"<p>Held-out perplexity after removing experts, for {len(langs)} languages "
        f"({e(', '.join(langs))}); methods {e(', '.join(config.methods))} at ratios "
        f"{e(', '.join(f'{r:g}' for r in sorted(config.ratios)))} of the experts, against random "
        f"pruning with {len(config.random_seeds)} seeds. Each method prunes for the evaluated "
        f"language (its own target). Held-out tokens per language: "
        f"{e(', '.join(f'{k} {v}' for k, v in tokens.items()))}.</p>",
        f"<p>A method <b>beats random</b> when its perplexity is below the lowest of the random "
        f"seeds (green), is <b>worse</b> when above the highest (red). With "
        f"{len(config.random_seeds)} seeds this describes, it does not test significance.</p>",
    ]
    pairs = {(v["eval_lang"], v["ratio"]) for v in judged}
    freq = [v for v in judged if v["frequency_guided"]]
    won = {(v["eval_lang"], v["ratio"]) for v in freq if v["verdict"] == BEATS}
    guided = [m for m in config.methods if m in FREQUENCY_METHODS]
    if freq:
        parts.append(
            f"<p>Frequency-guided pruning (best of {e(', '.join(guided))}) "
            f"beats random beyond the seeds' spread in <b>{len(won)} of {len(pairs)}</b> "
            f"(language, ratio) pairs.</p>"
        )
    head = "".join(f"<th>{e(m)}</th>" for m in config.methods)
    body = []
    for lang in langs:
        for ratio in sorted(config.ratios):
            cells = {
                v["method"]: v for v in judged if v["eval_lang"] == lang and v["ratio"] == ratio
            }
            if not cells:
                continue
            first = next(iter(cells.values()))
            rand = (
                f"{_fmt(first['random_mean'])} ± {_fmt(first['random_std'])} "
                f"[{_fmt(first['random_min'])}, {_fmt(first['random_max'])}]"
            )
            tds = "".join(
                _cell(_fmt(cells[m]["ppl"]), _COLOURS.get(cells[m]["verdict"], ""))
                if m in cells
                else "<td>–</td>"
                for m in config.methods
            )
            body.append(
                f"<tr><td>{e(lang)}</td><td>{ratio:g}</td><td>{_fmt(dense.get(lang))}</td>"
                f"<td>{rand}</td>{tds}</tr>"
            )
    parts.append(
        "<table><thead><tr><th>language</th><th>ratio</th><th>dense</th>"
        f"<th>random mean ± std [min, max]</th>{head}</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )
    if matrix is not None:
        parts.append(_matrix_html(matrix))
    return "\n".join(parts)


def _matrix_html(matrix: dict[str, Any]) -> str:
    e = html.escape
    langs = matrix["eval_langs"]
    head = "".join(f"<th>{e(b)}</th>" for b in langs)
    body = []
    for i, a in enumerate(matrix["targets"]):
        tds = "".join(
            _cell(f"{matrix['relative_to_dense'][i][j]:.3f}", bold=i == j)
            for j in range(len(langs))
        )
        body.append(f"<tr><th>{e(a)}</th>{tds}</tr>")
    n_best = sum(matrix["diagonal_best"].values())
    return (
        f"<p>Language specificity ({e(matrix['method'])}, ratio {matrix['ratio']:g}): perplexity "
        f"on the column's language after pruning for the row's language, divided by the dense "
        f"model's. Pruning for a language hurts that language least in <b>{n_best} of "
        f"{len(langs)}</b> columns.</p><table><thead><tr><th>pruned for \\ evaluated on</th>"
        f"{head}</tr></thead><tbody>" + "".join(body) + "</tbody></table>"
    )
