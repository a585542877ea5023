"""The pruning sweep's report section (HTML from the sweep's verdicts and matrix)."""

from __future__ import annotations

import html
import math
from typing import Any

from babelmoe.analysis.sweep import BEATS, WITHIN, WORSE
from babelmoe.prune.criteria import frequency_methods
from babelmoe.prune.sweep import DENSE, SweepConfig


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
    guided = [m for m in config.methods if m in frequency_methods()]
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


def section_lead(judged: list[dict[str, Any]], matrix: dict[str, Any] | None) -> str:
    """One plain sentence with the sweep's numbers (the section's lead and its figure's caption
    start): in how many (language, ratio) pairs frequency-guided pruning beats every random seed,
    and how often pruning for a language hurts that language least."""
    parts = []
    freq = [v for v in judged if v["frequency_guided"]]
    if freq:
        pairs = {(v["eval_lang"], v["ratio"]) for v in judged}
        won = {(v["eval_lang"], v["ratio"]) for v in freq if v["verdict"] == BEATS}
        parts.append(
            f"Frequency-guided pruning leaves a lower perplexity than every random seed in "
            f"{len(won)} of {len(pairs)} (language, ratio) pairs"
        )
    if matrix is not None:
        n_best = sum(matrix["diagonal_best"].values())
        parts.append(
            f"pruning for a language hurts that language least in {n_best} of "
            f"{len(matrix['eval_langs'])} languages"
        )
    return "; ".join(parts) + "." if parts else ""
