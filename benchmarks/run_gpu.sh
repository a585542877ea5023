#!/usr/bin/env bash
# The GPU benchmark batch recorded in benchmarks/RESULTS.md (one H200; random weights, real shapes).
# Usage: bash benchmarks/run_gpu.sh [OUTDIR]
set -uo pipefail
out=${1:-${OUT:-/tmp}}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
python3 benchmarks/bench_profile.py --device cuda --shape llama2-7b --batch 8 --seq 2048 --steps 4 --trace 2>&1 | grep -v "^profile:" | tee "$out/profile_llama2.txt"
python3 benchmarks/bench_pruned.py --device cuda --shape llama2-7b --batch 8 --seq 2048 2>&1 | tee "$out/pruned_llama2.txt"
python3 benchmarks/bench_kmeans.py --shape llama --device cuda --layers 0-31 --skip-reference 2>&1 | tail -45 | tee "$out/kmeans_llama2.txt"
