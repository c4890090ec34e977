// See step_checks.h: timings of the step's kernels at N = max_n, float32,
// each beside a device-to-device copy (cudaMemcpyAsync) of the bytes the
// kernel must read: the fused encode's memory (the yardstick), the
// sparse write's indices and updates, the checked tensor, the packed
// message's words and the vote's rows. Only the enqueue is timed (the
// caller's cudaEvent timer); one checked call comes first.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "../../core/packed.h"
#include "check_util.h"
#include "step_checks.h"
#include "sync_calls.h"

namespace step_checks {

using namespace util;  // NOLINT: the helpers of this harness
namespace gpu = sparsesign::gpu;

std::vector<Timed> BenchStepKernels(int64_t max_n, int reps,
                                    const Timer& timer) {
  const FloatFormat f32 = FloatFormat::kFloat32;
  const int64_t n = max_n, k = std::max<int64_t>(1, n / 100);
  const int64_t words = sparsesign::PackedWords(n), m = 8;
  size_t free_b = 0, total_b = 0;
  Ok(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  const size_t need = 4 * static_cast<size_t>(4 * n + m * words + 4 * k) +
                      gpu::EncodeWorkspaceBytes(f32, n) + (256 << 20);
  std::vector<Timed> out;
  if (need > free_b) {
    std::printf("skip step kernels at N=%lld: need %zu MiB, %zu free\n",
                static_cast<long long>(n), need >> 20, free_b >> 20);
    return out;
  }
  Dev memory(4 * n), grad(4 * n), votes(4 * n), dst(4 * n);
  memory.Put(Make(f32, "random", n, 1).data());
  grad.Put(Make(f32, "random", n, 2).data());
  const void* gradient = grad.p;
  Dev codes(4 * k), values(4 * k);
  Dev ews(gpu::EncodeWorkspaceBytes(f32, n)), sws(gpu::StepWorkspaceBytes());
  auto bench = [&](const char* op, int64_t kk, int64_t mm, double bytes,
                   const void* from, bool failed,
                   const std::function<bool()>& call) {
    Timed t;
    t.op = op;
    t.dtype = mm ? "int32" : "float32";
    t.n = n;
    t.k = kk;
    t.m = mm;
    t.copy_bytes = bytes;
    t.failed = failed;
    const std::array<double, 3> ms =
        timer(reps, [&](int) { t.failed |= !call(); });
    std::copy(ms.begin(), ms.end(), t.ms);
    t.copy_ms = timer(reps, [&](int) {
      Ok(cudaMemcpyAsync(dst.p, from, static_cast<size_t>(bytes),
                         cudaMemcpyDeviceToDevice),
         "copy");
    })[0];
    out.push_back(t);
  };
  // The fused encode, in place (the memory keeps accumulating; the timing
  // does not depend on the values' scale).
  auto* report = gpu::sync::PinnedReport<gpu::EncodeReport>();
  bool failed = !gpu::sync::AccumulateEncode(f32, memory.p, gradient, n, k,
                                             codes.as<int32_t>(), values.p,
                                             ews.p, ews.bytes).ok;
  bench("accumulate_encode", k, 0, 4.0 * n, memory.p, failed, [&] {
    return gpu::AccumulateEncodeAsync(f32, memory.p, gradient, n, k,
                                      codes.as<int32_t>(), values.p, ews.p,
                                      ews.bytes, report, nullptr).ok;
  });
  failed |= !gpu::EncodeOutcome(*report, n, k, false).ok;
  out.back().failed |= failed;
  // The sparse write of k ascending indices (the selected codes >> 1).
  std::vector<char> hc = codes.Get();
  std::vector<int32_t> idx(k);
  for (int64_t j = 0; j < k; ++j) {
    int32_t c;
    std::memcpy(&c, hc.data() + 4 * j, 4);
    idx[j] = c >= 0 ? c >> 1 : static_cast<int32_t>(n - k + j);  // padding
  }
  std::sort(idx.begin(), idx.end());
  idx.erase(std::unique(idx.begin(), idx.end()), idx.end());
  const int64_t u = static_cast<int64_t>(idx.size());
  Dev dix(idx.data(), 4 * u);
  auto* srep = gpu::sync::PinnedReport<gpu::ScatterReport>();
  bench("scatter_sub", u, 0, 8.0 * u, dix.p,
        !gpu::sync::ScatterSub(f32, memory.p, n, dix.as<int32_t>(), values.p,
                               u, "[]", sws.p, sws.bytes).ok,
        [&] {
          return gpu::ScatterSubAsync(f32, memory.p, n, dix.as<int32_t>(),
                                      values.p, u, sws.p, sws.bytes, srep,
                                      nullptr).ok;
        });
  auto* frep = gpu::sync::PinnedReport<gpu::FiniteReport>();
  bench("check_finite", 0, 0, 4.0 * n, gradient,
        !gpu::sync::CheckFinite(f32, gradient, n, "g", sws.p, sws.bytes).ok,
        [&] {
          return gpu::CheckFiniteAsync(f32, gradient, n, sws.p, sws.bytes,
                                       frep, nullptr).ok;
        });
  // Packed: the selected codes as one message, then the vote of m rows.
  Dev rows(4 * m * words);
  auto* prep = gpu::sync::PinnedReport<gpu::PackReport>();
  bench("packed_signs_encode", k, 1, 4.0 * words, rows.p,
        !gpu::sync::PackSigns(codes.as<int32_t>(), k, n, rows.as<int32_t>(),
                              words, sws.p, sws.bytes).ok,
        [&] {
          return gpu::PackSignsAsync(codes.as<int32_t>(), k, n,
                                     rows.as<int32_t>(), words, sws.p,
                                     sws.bytes, prep, nullptr).ok;
        });
  for (int64_t r = 1; r < m; ++r)
    Ok(cudaMemcpy(rows.as<int32_t>() + r * words, rows.p, 4 * words,
                  cudaMemcpyDeviceToDevice), "rows");
  auto* vrep = gpu::sync::PinnedReport<gpu::PackedVoteReport>();
  bench("packed_signs_vote", 0, m, 4.0 * m * words, rows.p,
        !gpu::sync::PackedVote(rows.as<int32_t>(), m, words, n, nullptr,
                               votes.as<float>(), sws.p, sws.bytes).ok,
        [&] {
          return gpu::PackedVoteAsync(rows.as<int32_t>(), m, words, n,
                                      nullptr, votes.as<float>(), sws.p,
                                      sws.bytes, vrep, nullptr).ok;
        });
  return out;
}

}  // namespace step_checks
