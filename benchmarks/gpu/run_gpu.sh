#!/usr/bin/env bash
# One prepared run for a lent GPU machine (nvcc, PyTorch; no TensorFlow):
# record the machine (nvidia-smi: GPU, driver, compute capability; nvcc
# --version), build the standalone harness for the GPU present, run
# compute-sanitizer (memcheck, racecheck, synccheck) on the --quick set,
# check GPU vs CPU core bit for bit (every GPU call twice: determinism;
# votes up to M = 256; N = 2**30 - 1 once; the step's kernels -- fused
# accumulate-encode, scatter_sub, check_finite, packed-signs encode and
# vote -- up to N = 1e7 against their CPU references), benchmark (encode
# vs a device-to-device copy; votes at M = 8, 64, 256; each step kernel at
# N = 1e8 beside a copy of the bytes it reads: the fused encode's memory at
# 1%, the write's indices + updates, the checked tensor, the packed words,
# 8 packed rows), time torch.topk beside it and print the ratio table.
# Every step has its own time limit (build 75 s, sanitizer 3 x 40 s, check
# 150 s, benchmark 90 s, torch 50 s: 485 s in all), so the run stays near
# 8 minutes. Everything lands under $OUT.
#   bash benchmarks/gpu/run_gpu.sh            # whole run
#   MAX_N=1e8 bash benchmarks/gpu/run_gpu.sh  # skip N = 2**30 - 1 and 1e9
#   EMULATE=1 bash benchmarks/gpu/run_gpu.sh  # no GPU: the harness against
#       the CPU emulation (g++), tiny sizes, no sanitizer or torch -- only
#       to test this script (tests/test_cuda_compile.py does)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-./out}"
mkdir -p "$OUT"
BUILD="${TMPDIR:-/tmp}/tf_sparsesign_harness"
EMULATE="${EMULATE:-}"
START=$(date +%s)
status=0
: > "$OUT/summary.md"
step() { echo; echo "=== $* ($(( $(date +%s) - START )) s)"; }
# record NAME SECONDS CMD...: runs CMD under `timeout`, notes the outcome.
record() {
  local name=$1 limit=$2 t0 rc
  shift 2
  t0=$(date +%s)
  timeout "$limit" "$@"
  rc=$?
  local verdict=ok
  if [ "$rc" -eq 124 ]; then verdict="TIMED OUT after ${limit} s"
  elif [ "$rc" -ne 0 ]; then verdict="FAILED (exit $rc)"; fi
  [ "$rc" -ne 0 ] && status=1
  echo "| $name | $verdict | $(( $(date +%s) - t0 )) s |" >> "$OUT/summary.md"
  return "$rc"
}

step "machine"
if [ -n "$EMULATE" ]; then
  echo "name,driver_version,compute_cap" > "$OUT/gpu.csv"
  echo "CPU emulation,none,0.0" >> "$OUT/gpu.csv"
  CC=00 FREE_MB=0
else
  nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total,memory.free,clocks.sm,clocks.mem \
    --format=csv > "$OUT/gpu.csv"
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1  # its header has "CUDA Version"
  CC=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
  FREE_MB=$(nvidia-smi --query-gpu=memory.free --format=csv,noheader,nounits | head -1 | tr -d ' ')
fi
cat "$OUT/gpu.csv"
NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
{ "$NVCC" --version || echo "nvcc not found: $NVCC"; } > "$OUT/nvcc.txt" 2>&1
tail -2 "$OUT/nvcc.txt"
# N = 2**30 - 1 needs ~14 GB for float32 (input, residual, codes,
# workspace); each case is also guarded by free memory inside.
if [ -z "${MAX_N:-}" ]; then
  if [ -n "$EMULATE" ]; then MAX_N=5
  elif [ "${FREE_MB:-0}" -gt 40000 ]; then MAX_N=1073741823
  else MAX_N=1e8; fi
fi
echo "compute capability ${CC}, ${FREE_MB} MiB free, MAX_N=${MAX_N}"
echo "| step | result | time |" >> "$OUT/summary.md"
echo "|---|---|---|" >> "$OUT/summary.md"

step "build harness"
if [ -n "$EMULATE" ]; then
  HARNESS="$BUILD/harness_emu"
  record build 600 make -C custom_ops/cuda/harness -j2 BUILD="$BUILD" \
    "$HARNESS" > "$OUT/build.log" 2>&1
else
  HARNESS="$BUILD/harness"
  record build 75 make -C custom_ops/cuda/harness -j"$(nproc)" BUILD="$BUILD" \
    NVCC="$NVCC" ARCH="-gencode arch=compute_${CC},code=sm_${CC}" \
    > "$OUT/build.log" 2>&1
fi
if [ ! -x "$HARNESS" ]; then
  tail -40 "$OUT/build.log"; echo "BUILD FAILED"; cat "$OUT/summary.md"; exit 1
fi
cp custom_ops/cuda/harness/Makefile "$OUT/Makefile.used"

step "compute-sanitizer on the --quick set"
if [ -n "$EMULATE" ] || ! command -v compute-sanitizer > /dev/null; then
  echo "| compute-sanitizer | skipped ($( [ -n "$EMULATE" ] && echo emulation || echo 'not found')) | 0 s |" >> "$OUT/summary.md"
else
  for tool in memcheck racecheck synccheck; do
    mkdir -p "$OUT/sanitizer_$tool"
    record "compute-sanitizer $tool" 40 compute-sanitizer --tool "$tool" \
      --error-exitcode 3 "$HARNESS" --quick --out "$OUT/sanitizer_$tool" \
      > "$OUT/sanitizer_$tool.log" 2>&1
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|, [0-9]+ failures" \
      "$OUT/sanitizer_$tool.log" | tail -3
  done
fi

step "correctness: GPU vs CPU core, every GPU call twice"
record "check (max N ${MAX_N})" 150 "$HARNESS" --check-only --max-n "$MAX_N" \
  --out "$OUT" > "$OUT/check.log" 2>&1
grep -E "^(device|GPU|\| )" "$OUT/check.log" | head -20
grep -c "^FAIL" "$OUT/check.log" | sed 's/^/FAIL lines: /'
grep "^FAIL" "$OUT/check.log" | head -20

step "benchmark: encode, copy, vote, step kernels"
if [ -n "$EMULATE" ]; then BENCH=(--max-n 3000 --reps 2 --max-rows 8)
else BENCH=(--max-n "$MAX_N"); fi
record benchmark 90 "$HARNESS" --bench-only "${BENCH[@]}" --out "$OUT" \
  > "$OUT/bench.log" 2>&1
tail -30 "$OUT/bench.log"

step "torch.topk baseline + ratios"
if [ -n "$EMULATE" ]; then
  echo "| torch.topk | skipped (emulation) | 0 s |" >> "$OUT/summary.md"
else
  record torch.topk 50 python3 benchmarks/gpu/torch_topk.py --max-n "$MAX_N" \
    --ours "$OUT/bench.csv" --out "$OUT" > "$OUT/torch.log" 2>&1
  tail -25 "$OUT/torch.log"
fi

step "done, exit status ${status}; files in ${OUT}"
cat "$OUT/summary.md"
ls -la "$OUT"
exit "$status"
