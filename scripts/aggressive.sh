#!/usr/bin/env bash
# Aggressive pruning (issue 13; the study's open question, 70-90% removed) on the bundled default
# model (Gemma 3 270M), E = 256: a sweep up to 0.9 removed of the frequency methods (sort,
# sort-per-layer, adaptive), our mass-budget rule, the activation-norm baseline and random, each
# pruned for and evaluated on its target language (3 held-out documents each); then where each
# method breaks down (first ratio with ppl > 2x and > 10x dense).
# Sized for 2 shared CPU cores (~100 evaluations): four languages of four scripts/genera
# (en, fr, zh, hi), ratios 0.4-0.9 (0.1 and 0.25 are in the main job's sweep), one random seed.
# On a free machine widen it: LANGS=en,fr,es,pt,zh,ar,hi,bn,ur RATIOS=0.1,0.25,0.4,0.55,0.7,0.8,0.9
# RANDOM_SEEDS=0,1,2 bash scripts/aggressive.sh
#
# Needs the split and profile of scripts/granularity.sh (runs/granularity/e256, seed 0): they are
# copied into runs/aggressive/ so the sweep has a folder of its own.
# Usage: bash scripts/aggressive.sh [RUN]     (default runs/aggressive)
# Re-running resumes the sweep from its last finished row.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${1:-runs/aggressive}"
SOURCE=runs/granularity/e256
mkdir -p "$RUN"
for f in partition.json partition.safetensors profile.json profile.safetensors; do
    [ -f "$RUN/$f" ] || cp "$SOURCE/$f" "$RUN/$f"
done
# The import registers mass-budget where the installed package does not register it yet.
.venv/bin/python -c "import babelmoe.prune.mass_budget; from babelmoe.cli import main; main()" \
    sweep "$RUN" --methods sort,sort-per-layer,adaptive,norm,mass-budget \
    --ratios "${RATIOS:-0.4,0.55,0.7,0.9}" --random-seeds "${RANDOM_SEEDS:-0}" \
    -l "${LANGS:-en,fr,zh,hi}" --no-specificity --max-documents 3
.venv/bin/python scripts/breakdown_table.py "$RUN"
