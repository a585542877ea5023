#!/usr/bin/env bash
# The GPU benchmark batch recorded in benchmarks/RESULTS.md (one H200; random weights, real shapes).
# Usage: bash benchmarks/run_gpu.sh [OUTDIR] [PART ...]
#   PART: imports cli cli-warm cli-nodet cli-long scores profile pruned kmeans
#   (default: cli profile pruned kmeans)
# cli: the profile command itself (the headline), on a fresh machine (cold compile cache);
#   TOKENS counted tokens (default 2M), SPLIT_ARGS. cli-warm: the same command again (inductor's
#   cache warm, as for every run after a machine's first); cli-nodet: again with
#   TORCHINDUCTOR_DETERMINISTIC=0 (kernels picked by timing them). imports: start-up cost.
# cli-long: LONG_TOKENS counted tokens (default 8M), the reference timed on 40 of the batches.
# scores: one layer's expert scores against its activation alone (a diagnostic), 7B and 70B.
set -uo pipefail
out=${1:-${OUT:-/tmp}}
shift || true
parts=${*:-cli profile pruned kmeans}
# The device image lacks pure-Python packages the corpus code imports (iso639, urielplus, langcodes):
# carry them (run's carry: [".carry"]) after, here: mkdir -p .carry &&
#   cp -r .venv/lib/python3.11/site-packages/{iso639,urielplus,langcodes} .carry/
export PYTHONPATH=$PWD:$PWD/.carry${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
cli="python3 benchmarks/bench_cli.py --device cuda --shape llama2-7b --tokens ${TOKENS:-2000000} --work /tmp/bench_cli --logs"
for part in $parts; do
  case $part in
    imports) python3 -X importtime -c "import babelmoe.cli" 2> "$out/importtime.txt"
             sort -t'|' -k2 -n "$out/importtime.txt" | tail -12
             /usr/bin/time -f "babelmoe --help: %e s" python3 -m babelmoe.cli --help > /dev/null ;;
    cli-warm) mkdir -p "$out/warm"; $cli "$out/warm" --out "$out/bench_cli_warm.json" --no-reference 2>&1 | tee "$out/bench_cli_warm.txt" ;;
    cli-long) mkdir -p "$out/long"; python3 benchmarks/bench_cli.py --device cuda --shape llama2-7b --tokens ${LONG_TOKENS:-8000000} \
                --work /tmp/bench_cli --logs "$out/long" --out "$out/bench_cli_long.json" --reference-batches 40 \
                --split-args "${SPLIT_ARGS:-}" 2>&1 | tee "$out/bench_cli_long.txt" ;;
    scores) for w in "--width 11008 --tokens 16384" "--width 28672 --tokens 8192"; do
              python3 benchmarks/bench_scores.py --device cuda $w 2>&1 | tee -a "$out/scores.txt"
            done ;;
    cli-nodet) mkdir -p "$out/nodet"; TORCHINDUCTOR_DETERMINISTIC=0 $cli "$out/nodet" --out "$out/bench_cli_nodet.json" --no-reference 2>&1 | tee "$out/bench_cli_nodet.txt" ;;
    cli) python3 benchmarks/bench_cli.py --device cuda --shape llama2-7b --tokens ${TOKENS:-2000000} --work /tmp/bench_cli \
           --logs "$out" --out "$out/bench_cli.json" --split-args "${SPLIT_ARGS:-}" ${CLI_FLAGS:-} 2>&1 | tee "$out/bench_cli.txt" ;;
    profile) python3 benchmarks/bench_profile.py --device cuda --shape llama2-7b --batch 8 --seq 2048 --steps ${STEPS:-4} \
               --variants "${VARIANTS:-eager,fused statistics,compiled layers}" ${TRACE---trace} 2>&1 | grep -v "^profile:" | tee "$out/profile_llama2.txt" ;;
    pruned) for c in "" --compile; do
              python3 benchmarks/bench_pruned.py --device cuda --shape llama2-7b --batch 8 --seq 2048 $c 2>&1 | tee -a "$out/pruned_llama2.txt"
            done ;;
    kmeans) python3 benchmarks/bench_kmeans.py --shape llama --device cuda --layers 0-31 --skip-reference 2>&1 | tail -45 | tee "$out/kmeans_llama2.txt" ;;
  esac
done
