#!/usr/bin/env bash
# One prepared run for a lent GPU machine (nvcc, PyTorch, CuPy; no
# TensorFlow): build the standalone harness for the GPU present, check GPU
# vs CPU core bit for bit, benchmark, time torch.topk alongside, and print
# the ratio table. Everything lands under $OUT (default ./out).
#   bash benchmarks/gpu/run_gpu.sh            # whole run, ~4-6 min on an H100
#   MAX_N=1e8 bash benchmarks/gpu/run_gpu.sh  # skip N = 1e9
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-./out}"
mkdir -p "$OUT"
BUILD="${TMPDIR:-/tmp}/tf_sparsesign_harness"
START=$(date +%s)
status=0
step() { echo; echo "=== $* ($(( $(date +%s) - START )) s)"; }

step "GPU"
nvidia-smi --query-gpu=name,compute_cap,memory.total,memory.free,clocks.sm,clocks.mem \
  --format=csv | tee "$OUT/gpu.csv"
CC=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
FREE_MB=$(nvidia-smi --query-gpu=memory.free --format=csv,noheader,nounits | head -1 | tr -d ' ')
# N = 1e9 needs ~13 GB for float32 (input, residual, codes, workspace) and
# more for the check; each case is also guarded by free memory inside.
if [ -z "${MAX_N:-}" ]; then
  if [ "${FREE_MB:-0}" -gt 40000 ]; then MAX_N=1e9; else MAX_N=1e8; fi
fi
echo "compute capability ${CC}, ${FREE_MB} MiB free, MAX_N=${MAX_N}"

step "build harness (sm_${CC})"
NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
"$NVCC" --version | tail -2
if ! make -C custom_ops/cuda/harness -j"$(nproc)" BUILD="$BUILD" NVCC="$NVCC" \
     ARCH="-gencode arch=compute_${CC},code=sm_${CC}" > "$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"; echo "BUILD FAILED"; exit 1
fi
cp custom_ops/cuda/harness/Makefile "$OUT/Makefile.used"

step "correctness: GPU vs CPU core"
timeout 240 "$BUILD/harness" --check-only --max-n "$MAX_N" --out "$OUT" \
  > "$OUT/check.log" 2>&1 || status=$?
grep -E "^(device|GPU|\| )" "$OUT/check.log" | head -20
grep -c "^FAIL" "$OUT/check.log" | sed 's/^/FAIL lines: /'
grep "^FAIL" "$OUT/check.log" | head -20

step "benchmark: encode, copy, vote"
timeout 150 "$BUILD/harness" --bench-only --max-n "$MAX_N" --out "$OUT" \
  > "$OUT/bench.log" 2>&1 || status=$?
tail -30 "$OUT/bench.log"

step "torch.topk baseline + ratios"
timeout 150 python3 benchmarks/gpu/torch_topk.py --max-n "$MAX_N" \
  --ours "$OUT/bench.csv" --out "$OUT" > "$OUT/torch.log" 2>&1 || status=$?
tail -25 "$OUT/torch.log"

step "done, exit status ${status}; files in ${OUT}"
ls -la "$OUT"
exit "$status"
