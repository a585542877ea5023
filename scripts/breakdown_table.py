"""Where each pruning method breaks down, from a sweep's rows (scripts/aggressive.sh).

For every method and target language: held-out perplexity at each ratio relative to the dense
model, and the first swept ratio at which it exceeds 2x and 10x the dense perplexity ("> 0.9":
never within the sweep). Random is summarised by the geometric mean over its seeds; with several
seeds, a table gives each seed's ppl / dense and the spread over seeds per language. Across
languages: the geometric mean of ppl / dense per method and ratio, and in how many
languages each method has the lowest perplexity.

Usage: .venv/bin/python scripts/breakdown_table.py RUN
Writes RUN/sweep/breakdown.json and RUN/sweep/breakdown.md and prints the Markdown.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

SKIP = ("dense", "random")


def gmean(xs: list[float]) -> float:
    return float(math.exp(np.mean(np.log(xs))))


def load(run: Path) -> tuple[dict, list[str], list[float], list[str]]:
    lines = (run / "sweep" / "rows.jsonl").read_text().splitlines()[1:]
    rows = [json.loads(line) for line in lines if line.strip()]
    ppl: dict[tuple[str, str, float], list[float]] = {}
    for r in rows:
        if r["method"] not in ("dense", "random") and r["target"] != r["eval_lang"]:
            continue  # a specificity-matrix row: pruned for another language
        ppl.setdefault((r["method"], r["eval_lang"], float(r["ratio"])), []).append(r["ppl"])
    langs = list(dict.fromkeys(r["eval_lang"] for r in rows if r["method"] == "dense"))
    ratios = sorted({float(r["ratio"]) for r in rows if r["method"] != "dense"})
    methods = list(dict.fromkeys(r["method"] for r in rows if r["method"] != "dense"))
    return ppl, langs, ratios, methods


def breakdown(curve: dict[float, float], dense: float, factor: float) -> str:
    for ratio in sorted(curve):
        if curve[ratio] > factor * dense:
            return f"{ratio:g}"
    return f"> {max(curve):g}"


def _random_spread(
    run: Path, langs: list[str], ratios: list[float], dense: dict, out: dict
) -> list[str]:
    """Random's ppl / dense per seed (geometric mean over languages) and its range per language."""
    lines = (run / "sweep" / "rows.jsonl").read_text().splitlines()[1:]
    rows = [json.loads(line) for line in lines if line.strip()]
    per_seed: dict[tuple[int, float, str], float] = {
        (r["seed"], float(r["ratio"]), r["eval_lang"]): r["ppl"]
        for r in rows
        if r["method"] == "random"
    }
    seeds = sorted({seed for seed, _, _ in per_seed})
    if len(seeds) < 2:
        return []
    md = ["", "## Random baseline per seed (ppl / dense)", ""]
    md.append("| ratio | " + " | ".join(f"seed {s}" for s in seeds) + " | max/min per language |")
    md.append("|---|" + "---|" * (len(seeds) + 1))
    spread: dict = {}
    for ratio in ratios:
        cells = []
        for seed in seeds:
            rel = [per_seed[(seed, ratio, lang)] / dense[lang] for lang in langs]
            cells.append(gmean(rel))
        span = [
            max(per_seed[(s, ratio, lang)] for s in seeds)
            / min(per_seed[(s, ratio, lang)] for s in seeds)
            for lang in langs
        ]
        spread[ratio] = {
            "gmean_rel_per_seed": cells,
            "max_over_min": dict(zip(langs, span, strict=True)),
        }
        md.append(
            f"| {ratio:g} | "
            + " | ".join(f"{x:.3g}" for x in cells)
            + f" | {min(span):.3g}-{max(span):.3g} |"
        )
    out["random_seeds"] = {"seeds": seeds, "by_ratio": spread}
    md += ["", "Cells (language, ratio) where the method is below the best random seed:", ""]
    methods = list(dict.fromkeys(r["method"] for r in rows if r["method"] not in SKIP))
    below: dict[str, int] = {}
    for method in methods:
        own = [r for r in rows if r["method"] == method and r["target"] == r["eval_lang"]]
        best = [min(per_seed[(s, float(r["ratio"]), r["eval_lang"])] for s in seeds) for r in own]
        below[method] = sum(r["ppl"] < b for r, b in zip(own, best, strict=True))
        md.append(f"- {method}: {below[method]} of {len(own)}")
    pruned = [r for r in rows if r["method"] not in SKIP and r["target"] == r["eval_lang"]]
    under = sum(r["ppl"] < dense[r["eval_lang"]] for r in pruned)
    md.append(f"- pruned evaluations below the dense perplexity: {under} of {len(pruned)}")
    out["below_best_random"], out["below_dense"] = below, [under, len(pruned)]
    return md


def main(run: Path) -> None:
    ppl, langs, ratios, methods = load(run)
    dense = {lang: ppl[("dense", lang, 0.0)][0] for lang in langs}
    curves: dict[str, dict[str, dict[float, float]]] = {}
    for method in methods:
        for lang in langs:
            curves.setdefault(method, {})[lang] = {
                ratio: gmean(ppl[(method, lang, ratio)])
                for ratio in ratios
                if (method, lang, ratio) in ppl
            }
    out: dict = {"languages": langs, "ratios": ratios, "dense": dense, "methods": {}}
    md = ["## Perplexity / dense, geometric mean over languages", ""]
    md.append("| method | " + " | ".join(f"{r:g}" for r in ratios) + " |")
    md.append("|---|" + "---|" * len(ratios))
    for method in methods:
        row = []
        for ratio in ratios:
            rel = [curves[method][lang][ratio] / dense[lang] for lang in langs]
            row.append(gmean(rel))
        out["methods"].setdefault(method, {})["gmean_rel"] = dict(zip(ratios, row, strict=True))
        md.append(f"| {method} | " + " | ".join(f"{x:.3g}" for x in row) + " |")
    md += ["", "## First ratio with ppl > 2x / > 10x dense, per language", ""]
    md.append("| method | " + " | ".join(langs) + " |")
    md.append("|---|" + "---|" * len(langs))
    for method in methods:
        cells = []
        for lang in langs:
            two = breakdown(curves[method][lang], dense[lang], 2.0)
            ten = breakdown(curves[method][lang], dense[lang], 10.0)
            out["methods"][method].setdefault("breakdown", {})[lang] = {"2x": two, "10x": ten}
            cells.append(f"{two} / {ten}")
        md.append(f"| {method} | " + " | ".join(cells) + " |")
    md += _random_spread(run, langs, ratios, dense, out)
    md += ["", "## Lowest perplexity among the methods (languages won, random excluded)", ""]
    md.append("| ratio | " + " | ".join(m for m in methods if m != "random") + " |")
    md.append("|---|" + "---|" * (len(methods) - 1))
    for ratio in ratios:
        wins = dict.fromkeys(methods, 0)
        for lang in langs:
            best = min((m for m in methods if m != "random"), key=lambda m: curves[m][lang][ratio])
            wins[best] += 1
        out.setdefault("wins", {})[ratio] = {m: wins[m] for m in methods if m != "random"}
        md.append(
            f"| {ratio:g} | " + " | ".join(str(wins[m]) for m in methods if m != "random") + " |"
        )
    md += ["", "## Perplexity per language (dense, then each method by ratio)", ""]
    for lang in langs:
        md.append(
            f"- **{lang}** (dense {dense[lang]:.1f}): "
            + "; ".join(
                f"{m} " + ", ".join(f"{curves[m][lang][r]:.3g}" for r in ratios) for m in methods
            )
        )
    out["curves"] = curves
    (run / "sweep" / "breakdown.json").write_text(json.dumps(out, indent=2) + "\n")
    text = "\n".join(md) + "\n"
    (run / "sweep" / "breakdown.md").write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/aggressive"))
