// Runs the real GPU kernels (encode.cu, vote.cu) under the CPU emulation in
// emu/ and compares them bit for bit with the CPU core. Built and run by
// tests/test_cuda_compile.py, which first rewrites the kernel launches
// (`k<<<...>>>(` -> `EMU_LAUNCH(k, ...)(`); no GPU involved.
// Covers the kernels' logic (tiles, block scans, warp look-back, candidate
// buffer, padding, residual, vote validation and tallies), not their
// behaviour under real concurrency: harness.cu on a GPU is still the judge.
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

// 16-byte aligned scratch; `offset` elements in, to test unaligned inputs.
struct Buffer {
  std::vector<uint64_t> store;
  char* data;
  Buffer(size_t bytes, size_t offset_bytes = 0)
      : store((bytes + offset_bytes) / 8 + 2) {
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
  const Status gs = sparsesign::gpu::Encode(
      f, x.data, n, k, gpu_codes.data(), residual ? gpu_res.data : nullptr,
      ws.data, sparsesign::gpu::EncodeWorkspaceBytes(f, n), nullptr);
  bool ok = cs.ok == gs.ok && cs.message == gs.message;
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

void CheckVote(int64_t n, int64_t m, int64_t k, std::mt19937_64& rng) {
  std::vector<int32_t> codes(m * k);
  for (int64_t r = 0; r < m; ++r) {  // sorted unique indices, tail padding
    std::vector<int32_t> idx;
    for (int64_t i = 0; i < n && static_cast<int64_t>(idx.size()) < k; ++i)
      if (rng() % 3 == 0) idx.push_back(static_cast<int32_t>(i));
    for (int64_t j = 0; j < k; ++j)
      codes[r * k + j] = j < static_cast<int64_t>(idx.size())
                             ? (idx[j] << 1) | static_cast<int32_t>(rng() & 1)
                             : -1;
  }
  std::normal_distribution<float> normal;
  std::vector<float> weights(m);
  for (auto& v : weights) v = normal(rng);
  for (int corrupt = 0; corrupt < 6; ++corrupt) {
    std::vector<int32_t> c = codes;
    std::vector<float> wts = weights;
    const int64_t r = rng() % m;
    if (corrupt == 1 && k > 0) c[r * k + rng() % k] = -5;
    if (corrupt == 2 && k > 0) c[r * k] = static_cast<int32_t>(n << 1);
    if (corrupt == 3 && k > 1) std::swap(c[r * k], c[r * k + 1]);
    if (corrupt == 4 && k > 1) c[r * k + k / 2] = -1;  // interior padding
    if (corrupt == 5) wts[r] = NAN;
    for (int weighted = 0; weighted < 2; ++weighted) {
      for (int drop = 0; drop < 2; ++drop) {
        std::vector<float> cpu_out(n, 3.0f), gpu_out(n, 7.0f);
        int64_t cd = -1, gd = -2;
        const Status cs = sparsesign::MajorityVote(
            c.data(), m, k, n, weighted ? wts.data() : nullptr, drop,
            cpu_out.data(), &cd, sparsesign::SerialRunner());
        Buffer ws(sparsesign::gpu::VoteWorkspaceBytes(m));
        const Status gs = sparsesign::gpu::MajorityVote(
            c.data(), m, k, n, weighted ? wts.data() : nullptr, drop,
            gpu_out.data(), &gd, ws.data, sparsesign::gpu::VoteWorkspaceBytes(m),
            nullptr);
        bool ok = cs.ok == gs.ok && cs.message == gs.message;
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

}  // namespace

int main(int argc, char** argv) {
  // Default: a few seconds. --full adds sizes with many tiles (minutes).
  const bool full = argc > 1 && std::string(argv[1]) == "--full";
  std::mt19937_64 rng(2024);
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
  std::printf("emulated_selftest: %d cases, %d failures\n", g_cases,
              g_failures);
  return g_failures == 0 ? 0 : 1;
}
