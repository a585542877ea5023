#!/usr/bin/env bash
# Two-GPU batch (issue 8) recorded in benchmarks/RESULTS.md: data-parallel exactness and scaling,
# and a model sharded over both GPUs. Usage: bash benchmarks/run_gpu2.sh [OUTDIR]
set -uo pipefail
out=${1:-${OUT:-/tmp}}
# The device image lacks two pure-Python packages the corpus code imports (iso639, urielplus):
# carry them (run's carry: [".carry"]) after, here: mkdir -p .carry &&
#   cp -r .venv/lib/python3.11/site-packages/{iso639,urielplus} .carry/
export PYTHONPATH=$PWD:$PWD/.carry${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpus.txt"
# The command itself, one GPU vs torchrun on both (compiled, default options): BENCH=cli
if [ "${BENCH:-}" = cli ]; then
  python3 benchmarks/bench_cli.py --device cuda --shape llama2-7b --tokens ${TOKENS:-2000000} --work /tmp/bench_cli \
    --logs "$out" --out "$out/bench_cli2.json" --torchrun 2 --split-args "${SPLIT_ARGS:-}" ${CLI_FLAGS:-} 2>&1 | tee "$out/bench_cli2.txt"
  # TRACE=1: then the kernel table of the hooked compiled layers on one GPU (bench_profile --trace)
  [ -z "${TRACE:-}" ] || CUDA_VISIBLE_DEVICES=0 python3 benchmarks/bench_profile.py --device cuda --shape llama2-7b \
    --batch 8 --seq 2048 --steps 4 --repeats 1 --variants "compiled layers" --trace 2>&1 | grep -v "^profile:" | tee "$out/trace.txt"
  exit
fi
b=benchmarks/bench_distributed.py
python3 $b single --out /tmp/single.pt --batches ${BATCHES:-32} ${DDP_FLAGS:-} 2>&1 | grep -v "profile:" | tail -5
torchrun --nproc_per_node 2 $b ddp --out /tmp/ddp.pt --batches ${BATCHES:-32} ${DDP_FLAGS:-} 2>&1 | grep -v "profile:" | tail -5
python3 $b compare /tmp/single.pt /tmp/ddp.pt 2>&1 | tee "$out/ddp.txt"
[ -n "${SKIP_SHARDED:-}" ] || python3 $b sharded --shape llama3-70b --layers ${SHARD_LAYERS:-8} --batches 4 --batch 4 2>&1 | grep -v "profile:" | tee "$out/sharded.txt"
