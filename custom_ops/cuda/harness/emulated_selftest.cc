// Runs the real GPU kernels (encode.cu, vote.cu, driver.cu) under the CPU
// emulation in emu/ and compares them bit for bit with the CPU core. Built
// and run by tests/test_cuda_compile.py, which first rewrites the sources
// (harness/emulate_launches.py); no GPU involved. The test runs it with the
// blocks in several orders, and with several blocks resident at once
// (EMU_BLOCK_ORDER, EMU_RESIDENT_BLOCKS, EMU_SEED: see emu/cuda_runtime.h),
// so that no result depends on blocks running in index order or one at a
// time. Covers the kernels' logic (tiles, block scans, warp look-back,
// candidate buffer, padding, residual, vote validation, ordered tallies),
// not the GPU's memory model or speed: harness.cu on a GPU is the judge.
// The step's kernels (fused encode, scatter_sub, check_finite, packed
// signs) run through step_checks.h, each GPU call twice.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../core/sparse_sign_core.h"
#include "../sparse_sign_cuda.h"
#include "step_checks.h"
#include "sync_calls.h"

namespace {

using sparsesign::FloatFormat;
using sparsesign::Status;

int g_cases = 0, g_failures = 0;

void Report(bool ok, const std::string& what) {
  ++g_cases;
  if (!ok) {
    ++g_failures;
    std::fprintf(stderr, "FAIL %s\n", what.c_str());
  }
}

size_t Width(FloatFormat f) {
  return f == FloatFormat::kFloat64   ? 8
         : f == FloatFormat::kFloat32 ? 4
                                      : 2;
}

// 16-byte aligned scratch; `offset_bytes` in, to test unaligned inputs.
struct Buffer {
  struct alignas(16) Chunk {
    char bytes[16];
  };
  std::vector<Chunk> store;
  char* data;
  Buffer(size_t bytes, size_t offset_bytes = 0)
      : store((bytes + offset_bytes) / 16 + 2) {
    data = reinterpret_cast<char*>(store.data()) + offset_bytes;
  }
};

uint64_t InfKey(FloatFormat f) {
  switch (f) {
    case FloatFormat::kFloat16: return 0x7C00;
    case FloatFormat::kBFloat16: return 0x7F80;
    case FloatFormat::kFloat32: return 0x7F800000u;
    case FloatFormat::kFloat64: return 0x7FF0000000000000ull;
  }
  return 0;
}

// Raw magnitudes (keys) of one family.
std::vector<uint64_t> Keys(const std::string& family, int64_t n, uint64_t inf,
                           std::mt19937_64& rng) {
  std::vector<uint64_t> keys(n);
  const uint64_t tie = 1 + rng() % (inf - 1);
  for (auto& key : keys) {
    if (family == "random") key = rng() % (inf + 1);
    else if (family == "ties") key = (rng() % 3 == 0) ? 0 : std::min(inf, tie + rng() % 3);
    else if (family == "zero") key = 0;
    else if (family == "equal") key = tie;
    else if (family == "inf") key = rng() % 40 == 0 ? inf : rng() % inf;
    else if (family == "denormal") key = rng() % 16;
    else if (family == "sparse") key = rng() % 300 == 0 ? 1 + rng() % inf : 0;
    else key = std::min(inf, tie + rng() % 40);  // "narrow": deep passes
  }
  return keys;
}

// Stores keys with random signs as raw `width`-bit patterns.
void Store(char* dst, const std::vector<uint64_t>& keys, int width,
           std::mt19937_64& rng) {
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint64_t sign = (rng() & 1) ? uint64_t{1} << (width - 1) : 0;
    const uint64_t bits = keys[i] | sign;
    std::memcpy(dst + i * (width / 8), &bits, width / 8);
  }
}

void CheckEncode(FloatFormat f, const std::string& family, int64_t n,
                 int64_t k, bool residual, bool misalign, bool nan,
                 std::mt19937_64& rng) {
  const size_t w = Width(f);
  const int width = static_cast<int>(w * 8);
  Buffer x(n * w, misalign ? w : 0);
  Store(x.data, Keys(family, n, InfKey(f), rng), width, rng);
  if (nan && n > 0) {  // a quiet NaN: the Inf key plus a mantissa bit
    const uint64_t q = InfKey(f) | (InfKey(f) >> 1 & ~InfKey(f));
    std::memcpy(x.data + (rng() % n) * w, &q, w);
  }
  std::vector<int32_t> cpu_codes(k, 5), gpu_codes(k, 0x5A5A5A5A);
  Buffer cpu_res(n * w), gpu_res(n * w);
  std::memset(gpu_res.data, 0xCD, n * w);
  const Status cs = sparsesign::Encode(f, x.data, n, k, cpu_codes.data(),
                                       residual ? cpu_res.data : nullptr,
                                       sparsesign::SerialRunner());
  Buffer ws(sparsesign::gpu::EncodeWorkspaceBytes(f, n));
  const sparsesign::gpu::Status gs = sparsesign::gpu::sync::Encode(
      f, x.data, n, k, gpu_codes.data(), residual ? gpu_res.data : nullptr,
      ws.data, sparsesign::gpu::EncodeWorkspaceBytes(f, n));
  bool ok = cs.ok == gs.ok && cs.message == gs.message && !gs.internal;
  if (ok && cs.ok) {
    ok = cpu_codes == gpu_codes &&
         (!residual || std::memcmp(cpu_res.data, gpu_res.data, n * w) == 0);
  }
  Report(ok, "encode w=" + std::to_string(width) + " " + family + " n=" +
                 std::to_string(n) + " k=" + std::to_string(k) +
                 (residual ? " +res" : "") + (misalign ? " misaligned" : "") +
                 (nan ? " nan" : "") + " cpu='" + cs.message + "' gpu='" +
                 gs.message + "'");
}

// Rows as the encoder writes them: sorted unique indices spread over
// [0, n) (so weighted votes span several tally ranges), tail padding.
std::vector<int32_t> VoteRows(int64_t n, int64_t m, int64_t k,
                              std::mt19937_64& rng) {
  std::vector<int32_t> codes(m * k, -1);
  for (int64_t r = 0; r < m; ++r) {
    int64_t j = 0;
    for (int64_t i = 0; i < n && j < k; ++i)
      if (static_cast<int64_t>(rng() % n) < 2 * k)
        codes[r * k + j++] = (static_cast<int32_t>(i) << 1) |
                             static_cast<int32_t>(rng() & 1);
  }
  return codes;
}

void CheckVote(int64_t n, int64_t m, int64_t k, std::mt19937_64& rng) {
  const std::vector<int32_t> codes = VoteRows(n, m, k, rng);
  std::normal_distribution<float> normal;
  std::vector<float> weights(m);
  for (auto& v : weights) v = normal(rng);
  if (m > 2) weights[2] = 1e-40f;  // a denormal weight counts as zero
  for (int corrupt = 0; corrupt < 8; ++corrupt) {
    std::vector<int32_t> c = codes;
    std::vector<float> wts = weights;
    const int64_t r = rng() % m;
    int32_t* row = c.data() + r * k;
    if (corrupt == 1 && k > 0) row[rng() % k] = -5;
    if (corrupt == 2 && k > 0) row[0] = static_cast<int32_t>(n << 1);
    if (corrupt == 3 && k > 1) std::swap(row[0], row[1]);
    if (corrupt == 4 && k > 1) row[k / 2] = -1;  // interior padding: valid
    if (corrupt == 5) wts[r] = NAN;
    if (corrupt == 6 && k > 2) {  // leading padding, long runs: valid
      row[0] = -1;
      row[1] = -1;
      for (int64_t j = k / 3; j < 2 * k / 3; ++j) row[j] = -1;
    }
    if (corrupt == 7 && k > 3) {  // out of order after a padding run
      for (int64_t j = 1; j + 1 < k; ++j) row[j] = -1;
      row[k - 1] = row[0];
    }
    for (int weighted = 0; weighted < 2; ++weighted) {
      for (int drop = 0; drop < 2; ++drop) {
        std::vector<float> cpu_out(n, 3.0f), gpu_out(n, 7.0f);
        int64_t cd = -1, gd = -2;
        const Status cs = sparsesign::MajorityVote(
            c.data(), m, k, n, weighted ? wts.data() : nullptr, drop,
            cpu_out.data(), &cd, sparsesign::SerialRunner());
        const size_t bytes =
            sparsesign::gpu::VoteWorkspaceBytes(m, n, weighted != 0);
        Buffer ws(bytes);
        const sparsesign::gpu::Status gs = sparsesign::gpu::sync::MajorityVote(
            c.data(), m, k, n, weighted ? wts.data() : nullptr, drop,
            gpu_out.data(), &gd, ws.data, bytes);
        bool ok = cs.ok == gs.ok && cs.message == gs.message && !gs.internal;
        if (ok && cs.ok)
          ok = cd == gd && std::memcmp(cpu_out.data(), gpu_out.data(),
                                       4 * n) == 0;
        Report(ok, "vote n=" + std::to_string(n) + " m=" + std::to_string(m) +
                       " k=" + std::to_string(k) + " corrupt=" +
                       std::to_string(corrupt) + (weighted ? " w" : "") +
                       (drop ? " drop" : "") + " cpu='" + cs.message +
                       "' gpu='" + gs.message + "'");
      }
    }
  }
}

// The launchers' own checks: a misaligned or small workspace is an internal
// error; a driver older than the build's CUDA major version is refused.
void CheckContracts() {
  std::vector<float> x(100, 1.0f);
  std::vector<int32_t> codes(10);
  const size_t bytes =
      sparsesign::gpu::EncodeWorkspaceBytes(FloatFormat::kFloat32, 100);
  Buffer ws(bytes + 16);
  sparsesign::gpu::EncodeReport report;
  auto st = sparsesign::gpu::EncodeAsync(FloatFormat::kFloat32, x.data(), 100,
                                         10, codes.data(), nullptr,
                                         ws.data + 4, bytes, &report, nullptr);
  Report(!st.ok && st.internal &&
             st.message.find("16-byte aligned") != std::string::npos,
         "misaligned workspace: '" + st.message + "'");
  st = sparsesign::gpu::EncodeAsync(FloatFormat::kFloat32, x.data(), 100, 10,
                                    codes.data(), nullptr, ws.data, bytes - 1,
                                    &report, nullptr);
  Report(!st.ok && st.internal &&
             st.message.find("too small") != std::string::npos,
         "small workspace: '" + st.message + "'");
  st = sparsesign::gpu::EncodeAsync(FloatFormat::kFloat32, x.data(), 100, 101,
                                    codes.data(), nullptr, ws.data, bytes,
                                    &report, nullptr);
  Report(!st.ok && !st.internal, "k > n is the caller's: '" + st.message + "'");
  sparsesign::gpu::VoteReport vote_report;
  std::vector<float> out(100);
  st = sparsesign::gpu::MajorityVoteAsync(
      codes.data(), 1, 10, 100, nullptr, out.data(), ws.data + 8,
      sparsesign::gpu::VoteWorkspaceBytes(1, 100, false), &vote_report,
      nullptr);
  Report(!st.ok && st.internal, "misaligned vote workspace: '" + st.message +
                                    "'");
  st = sparsesign::gpu::CheckDriver();
  const char* driver = std::getenv("EMU_DRIVER_VERSION");
  if (driver && std::atoi(driver) / 1000 < CUDART_VERSION / 1000) {
    Report(!st.ok && st.internal &&
               st.message.find("supports CUDA " + std::to_string(
                   std::atoi(driver) / 1000)) != std::string::npos &&
               st.message.find("TF_SPARSESIGN_DISABLE_CUDA=1") !=
                   std::string::npos,
           "old driver refused: '" + st.message + "'");
  } else {
    Report(st.ok, "driver accepted: '" + st.message + "'");
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Default: a few seconds. --full adds sizes with many tiles (minutes);
  // --lite is a smaller set with more tiles per launch, for running the
  // kernels in several block orders; --contracts only the launchers' checks;
  // --large N: the step's kernels' quick set at one large N only.
  const std::string mode = argc > 1 ? argv[1] : "";
  const bool full = mode == "--full";
  if (mode == "--large" && argc > 2) {
    step_checks::Plan plan;
    plan.sizes = {static_cast<int64_t>(std::stod(argv[2]))};
    plan.quick = true;
    plan.threads = true;
    for (const std::string& row : step_checks::CheckStepKernels(
             plan, [](bool ok, const std::string& what) { Report(ok, what); }))
      std::printf("%s\n", row.c_str());
    std::printf("emulated_selftest: %d cases, %d failures\n", g_cases,
                g_failures);
    return g_failures == 0 ? 0 : 1;
  }
  CheckContracts();
  std::mt19937_64 rng(2024);
  // The step's kernels: several tiles and a partial one (9001), more tiles
  // per launch in the other block orders (--lite: 20011, fewer cases).
  if (mode != "--contracts") {
    step_checks::Plan plan;
    plan.sizes = mode == "--lite"   ? std::vector<int64_t>{20011}
                 : full            ? std::vector<int64_t>{1, 7, 9001, 70001}
                                   : std::vector<int64_t>{9001};
    plan.quick = mode == "--lite";
    step_checks::CheckStepKernels(
        plan, [](bool ok, const std::string& what) { Report(ok, what); });
  }
  if (mode == "--lite") {
    const int64_t n = 20011;  // 5 tiles of float32, 10 of float64
    int toggle = 0;
    for (FloatFormat f : {FloatFormat::kFloat32, FloatFormat::kFloat64})
      for (const char* fam : {"random", "ties", "sparse", "narrow"})
        for (int64_t k : {int64_t{1}, n / 100, n}) {
          ++toggle;
          CheckEncode(f, fam, n, k, toggle % 2 == 0, toggle % 3 == 0, false,
                      rng);
        }
    CheckVote(3000, 8, 600, rng);
    CheckVote(40000, 5, 300, rng);
  }
  if (mode == "--contracts" || mode == "--lite") {
    std::printf("emulated_selftest: %d cases, %d failures\n", g_cases,
                g_failures);
    return g_failures == 0 ? 0 : 1;
  }
  const FloatFormat formats[] = {FloatFormat::kFloat16, FloatFormat::kBFloat16,
                                 FloatFormat::kFloat32, FloatFormat::kFloat64};
  const char* families[] = {"random", "ties",   "zero",   "equal",
                            "inf",    "denormal", "sparse", "narrow"};
  // Tiny sizes are covered by the harness run under emulation (N <= 5).
  // 9001: several tiles and a partial one in every format.
  std::vector<int64_t> sizes = {9001};
  if (full) sizes.insert(sizes.end(), {1, 7, 4100, 20011, 70001});
  int toggle = 0;
  for (FloatFormat f : formats) {
    for (int64_t n : sizes) {
      for (const char* fam : families) {
        for (int64_t k : {int64_t{0}, int64_t{1}, n / 100, n / 2, n}) {
          if (k > n || (k == n / 2 && !full)) continue;
          ++toggle;
          CheckEncode(f, fam, n, k, toggle % 2 == 0, toggle % 5 == 0, false,
                      rng);
        }
      }
      CheckEncode(f, "random", n, std::max<int64_t>(1, n / 10), true, false,
                  true, rng);
    }
  }
  for (int64_t n : {int64_t{1}, int64_t{50}, int64_t{3000}})
    for (int64_t m : {int64_t{1}, int64_t{3}, int64_t{8}})
      for (int64_t k : {int64_t{0}, int64_t{1}, int64_t{17}, int64_t{600}})
        if (full || (n > 1 && m != 3 && k != 1)) CheckVote(n, m, k, rng);
  // Several tally ranges (8192 outputs each) and rows crossing them.
  CheckVote(40000, 5, 300, rng);
  if (full) CheckVote(70001, 17, 2000, rng);
  std::printf("emulated_selftest: %d cases, %d failures\n", g_cases,
              g_failures);
  return g_failures == 0 ? 0 : 1;
}
