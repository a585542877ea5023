#!/usr/bin/env bash
# Install babelmoe (CPU torch on machines without a GPU) and run the whole pipeline on the bundled
# default model (Gemma 3 270M) for the paper's nine languages of the UDHR. Output: runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
# constraints.txt pins the CPU build of torch; with your own CUDA torch installed, drop "-c constraints.txt".
.venv/bin/pip install --quiet -c constraints.txt -e .
.venv/bin/babelmoe run --out runs/demo "$@"
