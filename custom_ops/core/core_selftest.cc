// Standalone check of the plain C++ core against a brute-force oracle.
// Builds with a bare compiler (no TensorFlow):
//   g++ -std=c++17 -O2 -pthread custom_ops/core/*.cc -o selftest && ./selftest
// tests/test_core_selftest.py builds and runs it (also under
// AddressSanitizer). Exit status 0 means every case agreed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "packed.h"
#include "sparse_sign_core.h"

using sparsesign::FloatFormat;

namespace {

int g_failures = 0;

void Fail(const char* what, int64_t n, int64_t k) {
  std::fprintf(stderr, "FAIL %s (n=%lld k=%lld)\n", what,
               static_cast<long long>(n), static_cast<long long>(k));
  ++g_failures;
}

// A runner with real threads, so the parallel paths are exercised.
sparsesign::ParallelRunner ThreadRunner(int threads) {
  return [threads](int64_t num_tasks,
                   const std::function<void(int64_t, int64_t)>& fn) {
    std::vector<std::thread> pool;
    const int64_t per = (num_tasks + threads - 1) / threads;
    for (int64_t b = 0; b < num_tasks; b += per)
      pool.emplace_back(fn, b, std::min(num_tasks, b + per));
    for (auto& t : pool) t.join();
  };
}

// Oracle: sort all nonzero entries by (|x| desc, index asc).
std::vector<int32_t> OracleEncode(const std::vector<float>& x, int64_t k) {
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < static_cast<int64_t>(x.size()); ++i)
    if (x[i] != 0.0f) idx.push_back(i);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
    return std::fabs(x[a]) > std::fabs(x[b]);
  });
  if (static_cast<int64_t>(idx.size()) > k) idx.resize(k);
  std::sort(idx.begin(), idx.end());
  std::vector<int32_t> codes(k, -1);
  for (size_t j = 0; j < idx.size(); ++j)
    codes[j] = static_cast<int32_t>(idx[j] << 1) | (x[idx[j]] < 0 ? 1 : 0);
  return codes;
}

void CheckEncode(const std::vector<float>& x, int64_t k, const char* what) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<int32_t> codes(k, 12345);
  std::vector<float> residual(n, 7.0f);
  auto st = sparsesign::Encode(FloatFormat::kFloat32, x.data(), n, k,
                               codes.data(), residual.data(), ThreadRunner(3));
  if (!st.ok) {
    std::fprintf(stderr, "%s\n", st.message.c_str());
    return Fail(what, n, k);
  }
  if (codes != OracleEncode(x, k)) return Fail(what, n, k);
  std::vector<float> expect = x;
  for (int32_t c : codes)
    if (c >= 0) expect[c >> 1] = 0.0f;
  if (std::memcmp(expect.data(), residual.data(), n * sizeof(float)) != 0)
    Fail("residual", n, k);
}

void EncodeCases() {
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal;
  for (int64_t n : {1, 5, 100, 70000, 300000, 1000003}) {
    std::vector<float> x(n);
    for (auto& v : x) v = normal(rng);
    for (int64_t k : {int64_t{0}, int64_t{1}, n / 1000, n / 100, n / 3, n})
      if (k <= n) CheckEncode(x, k, "normal");
    // Heavy ties: few distinct magnitudes, signs random, many zeros.
    for (auto& v : x) v = static_cast<float>(rng() % 4) * ((rng() & 1) ? -1 : 1);
    for (int64_t k : {int64_t{1}, n / 10, n / 2, n}) CheckEncode(x, k, "ties");
    // All equal: defeats the sample, exercises the radix path.
    std::fill(x.begin(), x.end(), -2.5f);
    CheckEncode(x, std::max<int64_t>(1, n / 7), "all-equal");
    // Sorted ramp with a hidden spike region: the sample misleads.
    for (int64_t i = 0; i < n; ++i) x[i] = (i % 997 == 0) ? 1e6f : 1e-3f * (i % 13);
    CheckEncode(x, std::max<int64_t>(1, n / 50), "spiky");
    // Signed zeros, infinities and denormals.
    for (int64_t i = 0; i < n; ++i) {
      const int r = static_cast<int>(rng() % 6);
      x[i] = r == 0 ? -0.0f : r == 1 ? 0.0f : r == 2 ? INFINITY
           : r == 3 ? -INFINITY : r == 4 ? 1e-42f : -1e-42f;
    }
    for (int64_t k : {int64_t{1}, n / 3, n}) CheckEncode(x, k, "special");
    std::fill(x.begin(), x.end(), 0.0f);
    CheckEncode(x, n / 2, "zeros");
  }
  // NaN must be reported, for every k including 0.
  std::vector<float> x(200000, 1.0f);
  x[123456] = NAN;
  std::vector<int32_t> codes(10);
  for (int64_t k : {0, 10}) {
    auto st = sparsesign::Encode(FloatFormat::kFloat32, x.data(), 200000, k,
                                 codes.data(), nullptr, ThreadRunner(2));
    if (st.ok || st.message.find("123456") == std::string::npos)
      Fail("nan", 200000, k);
  }
}

// The fused encode equals Encode on the sum with the residual written back.
void CheckAccumulate(const std::vector<float>& m0, const std::vector<float>& g,
                     int64_t k, const char* what) {
  const int64_t n = static_cast<int64_t>(m0.size());
  std::vector<float> sum(n);
  for (int64_t i = 0; i < n; ++i) sum[i] = m0[i] + g[i];
  std::vector<int32_t> expect_codes(k, 12345);
  std::vector<float> expect_memory(n);
  auto st = sparsesign::Encode(FloatFormat::kFloat32, sum.data(), n, k,
                               expect_codes.data(), expect_memory.data(),
                               sparsesign::SerialRunner());
  std::vector<float> memory = m0;
  std::vector<int32_t> codes(k, 54321);
  std::vector<float> values(k, 9.0f);
  auto fused = sparsesign::AccumulateEncode(FloatFormat::kFloat32,
                                            memory.data(), g.data(), n, k,
                                            codes.data(), values.data(),
                                            ThreadRunner(3));
  if (st.ok != fused.ok) return Fail(what, n, k);
  if (!st.ok) return;
  if (codes != expect_codes) return Fail(what, n, k);
  if (std::memcmp(memory.data(), expect_memory.data(), n * sizeof(float)))
    Fail("accumulate-memory", n, k);
  for (int64_t j = 0; j < k; ++j) {
    const float want = codes[j] >= 0 ? sum[codes[j] >> 1] : 0.0f;
    if (std::memcmp(&values[j], &want, sizeof(float)))
      return Fail("accumulate-values", n, k);
  }
}

void AccumulateCases() {
  std::mt19937_64 rng(17);
  std::normal_distribution<float> normal;
  for (int64_t n : {1, 1000, 70000, 300000, 1000003}) {
    std::vector<float> m0(n), g(n);
    for (auto& v : m0) v = normal(rng);
    for (auto& v : g) v = normal(rng);
    for (int64_t k : {int64_t{0}, int64_t{1}, n / 1000, n / 100, n / 3, n})
      if (k <= n) CheckAccumulate(m0, g, k, "accumulate-normal");
    // Memory and gradient that cancel (zeros in the sum), heavy ties.
    for (int64_t i = 0; i < n; ++i) {
      m0[i] = static_cast<float>(rng() % 4);
      g[i] = (rng() % 3 == 0) ? -m0[i] : static_cast<float>(rng() % 4) - 2.0f;
    }
    for (int64_t k : {int64_t{1}, n / 10, n / 2, n})
      CheckAccumulate(m0, g, k, "accumulate-ties");
    // All equal sums: the sample's bracket overflows, the exact path runs.
    std::fill(m0.begin(), m0.end(), 1.5f);
    std::fill(g.begin(), g.end(), -4.0f);
    CheckAccumulate(m0, g, std::max<int64_t>(1, n / 7), "accumulate-equal");
    // A memory of mostly zeros (fewer nonzeros than k).
    std::fill(m0.begin(), m0.end(), 0.0f);
    std::fill(g.begin(), g.end(), 0.0f);
    for (int64_t i = 0; i < n; i += 97) g[i] = normal(rng);
    CheckAccumulate(m0, g, n / 2, "accumulate-sparse");
  }
  // NaN in the sum is reported.
  std::vector<float> m0(200000, 1.0f), g(200000, 0.5f);
  g[77777] = NAN;
  std::vector<int32_t> codes(10);
  auto st = sparsesign::AccumulateEncode(FloatFormat::kFloat32, m0.data(),
                                         g.data(), 200000, 10, codes.data(),
                                         nullptr, ThreadRunner(2));
  if (st.ok || st.message.find("77777") == std::string::npos)
    Fail("accumulate-nan", 200000, 10);
}

std::vector<float> OracleVote(const std::vector<int32_t>& codes, int64_t m,
                              int64_t k, int64_t n,
                              const std::vector<float>& w) {
  std::vector<float> tally(n, 0.0f);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < k; ++j) {
      const int32_t c = codes[r * k + j];
      if (c >= 0) tally[c >> 1] += (c & 1) ? -w[r] : w[r];
    }
  for (auto& v : tally) v = static_cast<float>((v > 0) - (v < 0));
  return tally;
}

// The sparse vote scattered into zeros is the dense vote.
void CheckSparseVote(const std::vector<int32_t>& codes, int64_t m, int64_t k,
                     int64_t n, const float* w, const std::vector<float>& dense) {
  std::vector<int32_t> idx;
  std::vector<float> votes;
  int64_t dropped = -1;
  auto st = sparsesign::SparseMajorityVote(codes.data(), m, k, n, w, false,
                                           &idx, &votes, &dropped,
                                           ThreadRunner(3));
  std::vector<float> scattered(n, 0.0f);
  bool ok = st.ok && idx.size() == votes.size() && dropped == 0;
  for (size_t j = 0; ok && j < idx.size(); ++j) {
    ok = idx[j] >= 0 && idx[j] < n && votes[j] != 0.0f &&
         (j == 0 || idx[j] > idx[j - 1]);
    if (ok) scattered[idx[j]] = votes[j] > 0.0f ? 1.0f : -1.0f;
  }
  if (!ok || scattered != dense) Fail("sparse-vote", n, m);
}

void VoteCases() {
  std::mt19937_64 rng(11);
  for (int64_t n : {1, 10, 1000, 200000}) {
    for (int64_t m : {1, 2, 3, 8}) {
      const int64_t k = std::max<int64_t>(1, n / 20);
      std::vector<int32_t> codes(m * k, -1);
      for (int64_t r = 0; r < m; ++r) {
        std::vector<int64_t> idx(n);
        std::iota(idx.begin(), idx.end(), 0);
        std::shuffle(idx.begin(), idx.end(), rng);
        const int64_t live = static_cast<int64_t>(rng() % (k + 1));
        std::sort(idx.begin(), idx.begin() + live);
        for (int64_t j = 0; j < live; ++j)
          codes[r * k + j] = static_cast<int32_t>(idx[j] << 1) | (rng() & 1);
      }
      std::vector<float> w(m);
      for (auto& v : w) v = static_cast<float>(rng() % 1000) / 97.0f;
      std::vector<float> out(n, 9.0f);
      int64_t dropped = -1;
      auto st = sparsesign::MajorityVote(codes.data(), m, k, n, w.data(), false,
                                         out.data(), &dropped, ThreadRunner(3));
      if (!st.ok || out != OracleVote(codes, m, k, n, w) || dropped != 0)
        Fail("vote", n, m);
      CheckSparseVote(codes, m, k, n, w.data(), out);
    }
  }
  // Hostile rows never read or write out of bounds; drop counts them.
  std::uniform_int_distribution<int32_t> any(-5, 2100);
  for (int trial = 0; trial < 2000; ++trial) {
    const int64_t m = 1 + trial % 5, k = trial % 9, n = 1 + trial % 1000;
    std::vector<int32_t> codes(m * k);
    for (auto& c : codes) c = any(rng);
    std::vector<float> out(n);
    int64_t dropped = 0;
    auto st = sparsesign::MajorityVote(codes.data(), m, k, n, nullptr, true,
                                       out.data(), &dropped,
                                       sparsesign::SerialRunner());
    int64_t expect = 0;
    for (int64_t r = 0; r < m; ++r)
      expect += !sparsesign::ValidateRow(codes.data() + r * k, k, n).empty();
    if (!st.ok || dropped != expect) Fail("fuzz-drop", n, m);
    st = sparsesign::MajorityVote(codes.data(), m, k, n, nullptr, false,
                                  out.data(), &dropped,
                                  sparsesign::SerialRunner());
    if (st.ok != (expect == 0)) Fail("fuzz-raise", n, m);
    std::vector<int32_t> idx;
    std::vector<float> votes;
    int64_t sparse_dropped = -1;
    st = sparsesign::SparseMajorityVote(codes.data(), m, k, n, nullptr, true,
                                        &idx, &votes, &sparse_dropped,
                                        sparsesign::SerialRunner());
    if (!st.ok || sparse_dropped != expect) Fail("fuzz-sparse-drop", n, m);
  }
}

// Packed signs: the vote read from packed rows equals MajorityVote over the
// same codes (bit for bit, weighted and not); hostile codes and words never
// touch memory out of bounds.
void PackedCases() {
  std::mt19937_64 rng(13);
  for (int64_t n : {1, 19, 20, 21, 1000, 200001}) {
    for (int64_t m : {1, 3, 8}) {
      const int64_t k = n;
      std::vector<int32_t> codes(m * k, -1);
      for (int64_t r = 0; r < m; ++r)
        for (int64_t i = 0; i < n; ++i)
          if (rng() % 10 < 6)  // 40% zeros abstain
            codes[r * k + i] = static_cast<int32_t>(i << 1) | (rng() & 1);
      const int64_t w = sparsesign::PackedWords(n);
      std::vector<int32_t> rows(m * w, 7);
      for (int64_t r = 0; r < m; ++r) {
        // Any order: reverse the codes of odd rows.
        std::vector<int32_t> row(codes.begin() + r * k,
                                 codes.begin() + (r + 1) * k);
        if (r % 2) std::reverse(row.begin(), row.end());
        if (!sparsesign::PackSigns(row.data(), k, n, rows.data() + r * w, w)
                 .ok)
          Fail("pack", n, m);
      }
      std::vector<float> weights(m);
      for (auto& v : weights) v = static_cast<float>(rng() % 1000) / 97.0f;
      for (const float* wt : {static_cast<const float*>(nullptr),
                              static_cast<const float*>(weights.data())}) {
        std::vector<float> want(n), got(n, 9.0f);
        int64_t dropped = 0;
        sparsesign::MajorityVote(codes.data(), m, k, n, wt, false,
                                 want.data(), &dropped, ThreadRunner(2));
        auto st = sparsesign::PackedVote(rows.data(), m, w, n, wt, got.data(),
                                         ThreadRunner(3));
        if (!st.ok || std::memcmp(want.data(), got.data(), n * 4) != 0)
          Fail("packed vote", n, m);
      }
    }
  }
  // Errors: wrong length, bad codes, a repeated index.
  std::vector<int32_t> words(2);
  const int32_t twice[] = {4, 5}, low[] = {-2}, high[] = {2 * 21};
  if (sparsesign::PackSigns(twice, 2, 21, words.data(), 2).ok ||
      sparsesign::PackSigns(low, 1, 21, words.data(), 2).ok ||
      sparsesign::PackSigns(high, 1, 21, words.data(), 2).ok ||
      sparsesign::PackSigns(twice, 0, 21, words.data(), 1).ok)
    Fail("pack errors", 21, 0);
  // Any words at all vote without reading past the rows.
  std::uniform_int_distribution<int32_t> any(INT32_MIN, INT32_MAX);
  for (int trial = 0; trial < 500; ++trial) {
    const int64_t m = trial % 4, n = trial % 70;
    const int64_t w = sparsesign::PackedWords(n);
    std::vector<int32_t> rows(m * w);
    for (auto& v : rows) v = any(rng);
    std::vector<float> out(n);
    if (!sparsesign::PackedVote(rows.data(), m, w, n, nullptr, out.data(),
                                sparsesign::SerialRunner()).ok)
      Fail("packed fuzz", n, m);
  }
}

}  // namespace

int main() {
  EncodeCases();
  AccumulateCases();
  VoteCases();
  PackedCases();
  if (g_failures) {
    std::fprintf(stderr, "%d failures\n", g_failures);
    return 1;
  }
  std::printf("core selftest: all cases agree\n");
  return 0;
}
