// CPU check of the GPU encoder's plan (../select_plan.h): runs the same
// pass sequence the kernels run -- digit histograms, bucket choice, the
// candidate buffer, the (threshold, tie_take) compaction -- one element at a
// time, and compares codes and residuals with the CPU core bit for bit; and
// checks the vote's per-code row test against core ValidateRow.
// What it cannot cover: the CUDA mechanics (block scans, atomics, the
// look-back). Those need harness.cu on a GPU.
//   g++ -std=c++17 -O2 custom_ops/cuda/harness/plan_selftest.cc
//       custom_ops/core/encode.cc custom_ops/core/vote.cc -o plan_selftest
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../core/sparse_sign_core.h"
#include "../select_plan.h"

namespace {

using namespace sparsesign;  // NOLINT: a test file
using plan::SelectState;

int g_failures = 0;
int g_cases = 0;

template <typename K>
struct Emulated {
  bool nan = false;
  uint32_t first_nan = 0;
  std::vector<int32_t> codes;
  std::vector<typename K::Bits> residual;
};

// The kernels' sequence, serially.
template <typename K>
Emulated<K> EmulateEncode(const std::vector<typename K::Bits>& x, int64_t k) {
  using Bits = typename K::Bits;
  const int64_t n = static_cast<int64_t>(x.size());
  const uint64_t cap = std::min<int64_t>(n, n / 8 + 4096);  // as encode.cu
  SelectState s;
  plan::InitState(&s);
  std::vector<Bits> cand;
  const int passes = plan::NumPasses(K::kKeyBits);
  for (int p = 0; p < passes && !(p > 0 && s.done); ++p) {
    const plan::DigitPass pass = plan::PassAt(K::kKeyBits, p);
    std::vector<uint64_t> hist(plan::kBins, 0);
    const bool from_cand = p >= 2 && s.collect;
    const std::vector<Bits>& src = from_cand ? cand : x;
    for (size_t i = 0; i < src.size(); ++i) {
      const Bits key = src[i] & K::kMagMask;
      if (key == 0) continue;
      if (p == 0) {
        ++s.report.nnz;
        if (key > K::kInfKey && s.report.first_nan == 0xFFFFFFFFu)
          s.report.first_nan = static_cast<uint32_t>(i);
      }
      if (!plan::InBucket(key, pass, s.prefix, p)) continue;
      ++hist[plan::DigitOf(key, pass)];
      if (p == 1 && s.collect) cand.push_back(key);
    }
    if (p == 0 && plan::StartSelection(&s, k, K::kMagMask)) break;
    uint64_t before = 0;
    for (int b = plan::kBins - 1; b >= 0; --b) {
      if (plan::BinCoversNeed(before, hist[b], s.need)) {
        const uint64_t count = hist[b];
        plan::Advance(&s, pass, p, passes, b, count, s.need - before);
        if (p == 0) s.collect = plan::WorthCollecting(passes, count, cap);
        break;
      }
      before += hist[b];
    }
  }
  Emulated<K> out;
  if (s.report.error == plan::kErrNaN) {
    out.nan = true;
    out.first_nan = s.report.first_nan;
    return out;
  }
  out.codes.assign(k, -7);
  out.residual = x;
  uint64_t above = 0, ties = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t key = x[i] & K::kMagMask;
    if (plan::Selected(key, ties, s.threshold, s.tie_take)) {
      const uint64_t pos = plan::CodePosition(above, ties, s.tie_take);
      if (pos >= static_cast<uint64_t>(k)) {
        std::fprintf(stderr, "FAIL position %llu >= k\n",
                     static_cast<unsigned long long>(pos));
        ++g_failures;
        return out;
      }
      out.codes[pos] = static_cast<int32_t>(i << 1) |
                       static_cast<int32_t>(x[i] >> (K::kWidth - 1));
      out.residual[i] = 0;
    }
    above += key > s.threshold;
    ties += key == s.threshold;
  }
  for (int64_t i = std::min<int64_t>(s.report.nnz, k); i < k; ++i)
    out.codes[i] = -1;
  return out;
}

template <typename K>
void Check(FloatFormat format, const std::vector<typename K::Bits>& x,
           int64_t k, const char* what) {
  ++g_cases;
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<int32_t> codes(k, 99);
  std::vector<typename K::Bits> residual(n, 1);
  const Status st = Encode(format, x.data(), n, k, codes.data(),
                           residual.data(), SerialRunner());
  const Emulated<K> em = EmulateEncode<K>(x, k);
  bool ok;
  if (!st.ok) {
    ok = em.nan && st.message.find("flat index " +
                                   std::to_string(em.first_nan) + " ") !=
                       std::string::npos;
  } else {
    ok = !em.nan && em.codes == codes && em.residual == residual;
  }
  if (!ok) {
    ++g_failures;
    std::fprintf(stderr, "FAIL %s: n=%lld k=%lld width=%d (%s)\n", what,
                 static_cast<long long>(n), static_cast<long long>(k),
                 K::kWidth, st.ok ? "ok" : st.message.c_str());
  }
}

// Random bit patterns of one family (sign random).
template <typename K>
std::vector<typename K::Bits> Make(const std::string& family, int64_t n,
                                   std::mt19937_64& rng) {
  using Bits = typename K::Bits;
  const Bits sign = static_cast<Bits>(Bits(1) << (K::kWidth - 1));
  std::vector<Bits> x(n);
  std::vector<Bits> palette;
  for (int i = 0; i < 5; ++i)
    palette.push_back(static_cast<Bits>(rng() % K::kInfKey) | Bits(1));
  for (int64_t i = 0; i < n; ++i) {
    Bits key;
    if (family == "random") {
      key = static_cast<Bits>(rng() % (uint64_t{K::kInfKey} + 1));
    } else if (family == "ties") {
      key = (rng() % 4 == 0) ? Bits(0) : palette[rng() % palette.size()];
    } else if (family == "zero") {
      key = 0;
    } else if (family == "equal") {
      key = palette[0];
    } else if (family == "inf") {
      key = (rng() % 50 == 0) ? K::kInfKey
                              : static_cast<Bits>(rng() % K::kInfKey);
    } else if (family == "denormal") {  // exponent bits all zero
      key = static_cast<Bits>(rng() % 16);
    } else if (family == "sparse") {
      key = (rng() % 200 == 0) ? static_cast<Bits>(rng() % K::kInfKey) : 0;
    } else {  // "narrow": keys close together, deep digit passes
      key = static_cast<Bits>(
          std::min<uint64_t>(palette[1] + rng() % 64, K::kInfKey));
    }
    x[i] = (rng() & 1) ? static_cast<Bits>(key | sign) : key;
  }
  return x;
}

template <typename K>
void CheckFormat(FloatFormat format, std::mt19937_64& rng) {
  const char* families[] = {"random", "ties",   "zero",   "equal",
                            "inf",    "denormal", "sparse", "narrow"};
  for (int64_t n : {1, 2, 7, 100, 4099, 70000, 300001}) {
    for (const char* fam : families) {
      auto x = Make<K>(fam, n, rng);
      int64_t nnz = 0;
      for (auto b : x) nnz += (b & K::kMagMask) != 0;
      std::vector<int64_t> ks = {0, 1, n, n / 100, n / 1000, nnz,
                                 std::min<int64_t>(n, nnz + 1),
                                 std::max<int64_t>(0, nnz - 1)};
      for (int64_t k : ks) {
        if (k < 0 || k > n) continue;
        Check<K>(format, x, k, fam);
      }
      // NaN somewhere: must be the same error on both sides.
      auto y = x;
      y[rng() % n] = static_cast<typename K::Bits>(K::kInfKey + 1);
      Check<K>(format, y, std::max<int64_t>(1, n / 100), "nan");
    }
  }
}

void CheckRowRule(std::mt19937_64& rng) {
  for (int t = 0; t < 20000; ++t) {
    const int64_t k = 1 + rng() % 12;
    const int64_t n = 1 + rng() % 40;
    std::vector<int32_t> row(k);
    for (auto& c : row) {
      const int r = rng() % 10;
      c = r == 0 ? -1 : r == 1 ? -2 - static_cast<int32_t>(rng() % 5)
                               : static_cast<int32_t>(rng() % (2 * n + 6));
    }
    if (rng() % 2) {  // mostly valid rows: sorted unique, tail padding
      std::vector<int32_t> idx;
      for (int64_t i = 0; i < n; ++i)
        if (rng() % 3 == 0) idx.push_back(static_cast<int32_t>(i));
      for (int64_t j = 0; j < k; ++j)
        row[j] = j < static_cast<int64_t>(idx.size())
                     ? (idx[j] << 1) | static_cast<int32_t>(rng() & 1)
                     : -1;
      if (rng() % 3 == 0) row[rng() % k] = -1;  // interior padding: valid
      if (rng() % 4 == 0) std::swap(row[0], row[k - 1]);
    }
    bool breaks = false;
    for (int64_t j = 0; j < k; ++j)
      breaks |= plan::CodeBreaksRow(row.data(), j, n);
    ++g_cases;
    if (breaks == ValidateRow(row.data(), k, n).empty()) {
      ++g_failures;
      std::fprintf(stderr, "FAIL row rule (k=%lld n=%lld)\n",
                   static_cast<long long>(k), static_cast<long long>(n));
    }
  }
}

void CheckPacking() {
  const uint64_t big = (uint64_t{1} << 30) - 1;
  const uint64_t a = plan::PackCounts(big / 2, 3), b = plan::PackCounts(5, big / 2);
  ++g_cases;
  if (plan::AboveOf(a + b) != big / 2 + 5 || plan::TiesOf(a + b) != big / 2 + 3 ||
      ((a + b) & plan::kFlagMask) != 0) {
    ++g_failures;
    std::fprintf(stderr, "FAIL packing\n");
  }
}

}  // namespace

int main() {
  std::mt19937_64 rng(12345);
  CheckFormat<plan::F16Keys>(FloatFormat::kFloat16, rng);
  CheckFormat<plan::BF16Keys>(FloatFormat::kBFloat16, rng);
  CheckFormat<plan::F32Keys>(FloatFormat::kFloat32, rng);
  CheckFormat<plan::F64Keys>(FloatFormat::kFloat64, rng);
  CheckRowRule(rng);
  CheckPacking();
  std::printf("plan_selftest: %d cases, %d failures\n", g_cases, g_failures);
  return g_failures == 0 ? 0 : 1;
}
