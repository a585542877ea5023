#!/usr/bin/env bash
# Expert granularity (issue 13): the whole analysis for E in {64, 128, 256, 512} on the bundled
# default model (Gemma 3 270M), the paper's nine UDHR languages, k-means seeds 0, 1, 2.
#
# Per E: `babelmoe run --no-sweep` (split + profile for seeds 0, 1, 2, analyse with the seed study),
# then a focused sweep (sort at 25% removed vs random seeds 0, 1, 2; 3 held-out documents per
# language, like the README's main job), then one table over all E:
#   runs/granularity/granularity.md and granularity.json  (scripts/granularity_table.py)
#
# Usage: bash scripts/granularity.sh [E ...]      (default: 64 128 256 512)
#        EXTRA_SEEDS=1 bash scripts/granularity.sh 64   (fewer k-means seeds; default 1,2)
# Re-running resumes: every stage skips what is finished.
set -euo pipefail
cd "$(dirname "$0")/.."
BABELMOE=.venv/bin/babelmoe
ROOT=runs/granularity
EXPERTS=("${@:-64 128 256 512}")
# shellcheck disable=SC2206
EXPERTS=(${EXPERTS[*]})
mkdir -p "$ROOT"
for E in "${EXPERTS[@]}"; do
    RUN="$ROOT/e$E"
    start=$(date +%s)
    "$BABELMOE" run --out "$RUN" --experts "$E" --extra-seeds "${EXTRA_SEEDS-1,2}" --no-sweep
    "$BABELMOE" sweep "$RUN" --methods sort --ratios 0.25 --random-seeds 0,1,2 \
        --no-specificity --max-documents 3
    echo "E=$E done in $(( $(date +%s) - start )) s" | tee -a "$ROOT/timings.txt"
done
.venv/bin/python scripts/granularity_table.py "$ROOT"
