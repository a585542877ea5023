#!/usr/bin/env bash
# Steering on a second sample of languages (issue 24; RESULTS.md, "Steering on a second sample
# of languages"): the 8 versions of sample 2 (REPLICATION_LANGUAGES) that py3langid can label,
# profiled alone so that --rule excess compares each with the other steered languages only (as
# the nine's run folder, profiled on the nine), then steer without silencing, 2 and 4 prompts.
# The nine's run folder (babelmoe split + babelmoe profile -l en,fr,es,pt,zh,ar,hi,bn,ur) is NINE.
# Usage: bash scripts/steering_sample2.sh NINE OUT     (OUT/sample2, OUT/sample2_p4, OUT/nine_p4)
set -euo pipefail
NINE="$1"
OUT="$2"
PY="${PYTHON:-.venv/bin/python}"
mkdir -p "$OUT/sample2" "$OUT/nine_p4"
cp "$NINE"/partition.* "$OUT/sample2/"   # the same split (it does not depend on languages)
"$PY" -m babelmoe.cli profile "$OUT/sample2" -l bul,kir,pes_2,pbu,san,lin,qud,053
cp -r "$OUT/sample2" "$OUT/sample2_p4"
cp "$NINE"/partition.* "$NINE"/profile.* "$OUT/nine_p4/"
"$PY" -m babelmoe.cli steer "$OUT/sample2" --model default --no-silencing
"$PY" -m babelmoe.cli steer "$OUT/sample2_p4" --model default --no-silencing --prompts 4
"$PY" -m babelmoe.cli steer "$OUT/nine_p4" --model default --no-silencing --prompts 4
for run in "$NINE" "$OUT/sample2" "$OUT/nine_p4" "$OUT/sample2_p4"; do
    "$PY" scripts/steering_tables.py "$run"
done
