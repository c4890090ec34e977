// Checks and timings of the step's GPU kernels (the fused accumulate-encode,
// scatter_sub, check_finite, packed-signs encode and vote) against their CPU
// references, bit for bit, every GPU call twice (determinism). Shared by
// the standalone harness (harness.cu: on a GPU, and under the emulation)
// and the emulated self-test (emulated_selftest.cc). Host code only: the
// inputs are made on the host and copied in, so the same file builds with
// nvcc and against the emulation (emu/), unchanged.
#ifndef TF_SPARSESIGN_CUDA_HARNESS_STEP_CHECKS_H_
#define TF_SPARSESIGN_CUDA_HARNESS_STEP_CHECKS_H_

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace step_checks {

struct Plan {
  std::vector<int64_t> sizes;  // N of every check family
  int64_t large_n = 0;         // one more N for a few cases (0: none)
  bool quick = false;          // fewer families and k (compute-sanitizer)
  bool threads = false;        // CPU references on all cores
};

// ok, and what was checked (with why not, when not ok).
using Record = std::function<void(bool ok, const std::string& what)>;

// Runs every check of `plan`; returns markdown rows
// "| dtype | what | N | result |" summarising them.
std::vector<std::string> CheckStepKernels(const Plan& plan,
                                          const Record& record);

// One timed kernel beside a device-to-device copy of `copy_bytes`.
struct Timed {
  std::string op, dtype, variant;
  int64_t n = 0, k = 0, m = 0;
  double ms[3] = {0, 0, 0};  // median, p10, p90 of the kernel
  double copy_ms = 0;        // median of the copy
  double copy_bytes = 0;  // what the copy moved (read once, written once)
  bool failed = false;
};

// Times the kernels at max_n (float32; fused encode at 1% density, the
// write of 1% of N, the check, packed encode of 1% and the vote of 8
// rows), median of `reps` enqueued calls, each beside its copy.
// `timer(reps, fn)` returns the median, p10 and p90 ms of fn(i) (the
// harness's cudaEvent timer).
using Timer = std::function<std::array<double, 3>(
    int, const std::function<void(int)>&)>;
std::vector<Timed> BenchStepKernels(int64_t max_n, int reps,
                                    const Timer& timer);

}  // namespace step_checks

#endif  // TF_SPARSESIGN_CUDA_HARNESS_STEP_CHECKS_H_
