// See step_checks.h: packed-signs encode and vote against the core's
// PackSigns and PackedVote (../../core/packed.cc), errors included.
#include <cuda_runtime.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "../../core/packed.h"
#include "check_util.h"
#include "step_checks.h"
#include "sync_calls.h"

namespace step_checks {
namespace {

using namespace util;  // NOLINT: the helpers of this harness
namespace gpu = sparsesign::gpu;

std::vector<char> Bytes(const std::vector<int32_t>& v) {
  std::vector<char> b(4 * v.size());
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

Result CpuPack(const std::vector<int32_t>& codes, int64_t n) {
  std::vector<int32_t> words(sparsesign::PackedWords(n), 0);
  Result r;
  r.status = sparsesign::PackSigns(codes.data(), codes.size(), n, words.data(),
                                   words.size());
  if (r.status.ok) r.outputs = {Bytes(words)};
  return r;
}

Result GpuPack(const std::vector<int32_t>& codes, int64_t n, int poison) {
  const int64_t w = sparsesign::PackedWords(n);
  Dev dc(codes.data(), 4 * codes.size()), words(4 * w, poison);
  Dev ws(gpu::StepWorkspaceBytes(), poison);
  const gpu::Status st = gpu::sync::PackSigns(
      dc.as<int32_t>(), codes.size(), n, words.as<int32_t>(), w, ws.p,
      ws.bytes);
  Result r;
  r.status = st;
  r.internal = st.internal;
  if (st.ok) r.outputs = {words.Get()};
  return r;
}

// k codes of distinct indices (ascending), sign from the hash.
std::vector<int32_t> Codes(int64_t n, int64_t k, std::mt19937_64& rng) {
  std::vector<int32_t> codes;
  for (int64_t i = 0; i < n && static_cast<int64_t>(codes.size()) < k; ++i)
    if (static_cast<int64_t>(rng() % n) < 2 * k)
      codes.push_back(static_cast<int32_t>((i << 1) | (rng() & 1)));
  codes.resize(k, -1);  // tail padding
  return codes;
}

Result CpuVote(const std::vector<int32_t>& rows, int64_t m, int64_t n,
               const std::vector<float>* weights) {
  std::vector<float> out(n, 3.0f);
  Result r;
  r.status = sparsesign::PackedVote(
      rows.data(), m, sparsesign::PackedWords(n), n,
      weights ? weights->data() : nullptr, out.data(),
      sparsesign::SerialRunner());
  if (r.status.ok) {
    r.outputs = {std::vector<char>(4 * n)};
    if (n) std::memcpy(r.outputs[0].data(), out.data(), 4 * n);
  }
  return r;
}

Result GpuVote(const std::vector<int32_t>& rows, int64_t m, int64_t n,
               const std::vector<float>* weights, int poison) {
  Dev dr(rows.data(), 4 * rows.size()), out(4 * n, poison);
  Dev dw(weights ? weights->data() : nullptr,
         weights ? 4 * weights->size() : 0);
  Dev ws(gpu::StepWorkspaceBytes(), poison);
  const gpu::Status st = gpu::sync::PackedVote(
      dr.as<int32_t>(), m, sparsesign::PackedWords(n), n,
      weights ? dw.as<float>() : nullptr, out.as<float>(), ws.p, ws.bytes);
  Result r;
  r.status = st;
  r.internal = st.internal;
  if (st.ok) r.outputs = {out.Get()};
  return r;
}

}  // namespace

void CheckPacked(const Plan& p, const Record& rec,
                 std::vector<std::string>* rows) {
  std::mt19937_64 rng(41);
  int cases = 0, fails = 0;
  int64_t top = 0;
  auto note = [&](const std::string& why, const std::string& what) {
    ++cases;
    fails += !why.empty();
    rec(why.empty(), what + ": " + why);
  };
  // Encode: in order, shuffled, padding anywhere, and each error alone and
  // two together (the CPU reports the first position in its loop).
  std::vector<int64_t> sizes = p.sizes;
  sizes.push_back(0);
  if (p.large_n > 0) sizes.push_back(p.large_n);
  for (int64_t n : sizes) {
    top = std::max(top, n);
    const int64_t k = std::max<int64_t>(1, n / 50);
    const std::vector<int32_t> base = n > 0 ? Codes(n, k, rng)
                                            : std::vector<int32_t>(k, -1);
    for (int variant = 0; variant < (p.quick ? 3 : 8); ++variant) {
      std::vector<int32_t> c = base;
      std::string label = "in order";
      const size_t a = rng() % c.size(), b = rng() % c.size();
      if (variant == 1) {
        std::shuffle(c.begin(), c.end(), rng);
        label = "shuffled";
      }
      if (variant == 2) { c[a] = c[b] ^ 1; label = "repeated index"; }
      if (variant == 3) { c[a] = -3; label = "code < -1"; }
      if (variant == 4) {
        c[a] = static_cast<int32_t>(n << 1);
        label = "index >= n";
      }
      if (variant == 5) { c[a] = -1; c[b] = -1; label = "padding inside"; }
      if (variant == 6) {  // a repeat and a bad code: whichever comes first
        c[a] = c[b];
        c[(a + b) % c.size()] = -2;
        label = "repeat + bad code";
      }
      if (variant == 7) {
        std::shuffle(c.begin(), c.end(), rng);
        c.push_back(c[0]);
        label = "shuffled, last repeats";
      }
      if (n == 0 && variant > 0) continue;
      const std::string why =
          Compare(FloatFormat::kFloat32, CpuPack(c, n), GpuPack(c, n, 0x5A),
                  GpuPack(c, n, 0xC3));
      note(why, "packed_signs_encode n=" + std::to_string(n) + " k=" +
                    std::to_string(c.size()) + " " + label);
    }
  }
  // Vote: rows packed from codes; weighted and not; an abstaining row
  // (-1 words: bytes above 242), a zero and a denormal weight, a bad weight.
  for (int64_t n : sizes) {
    for (int64_t m : {int64_t{1}, int64_t{3}, int64_t{8}}) {
      if (p.quick && m == 3) continue;
      const int64_t w = sparsesign::PackedWords(n);
      const int64_t k = std::max<int64_t>(1, n / 20);
      std::vector<int32_t> rows(m * w);
      for (int64_t r = 0; r < m; ++r) {
        const std::vector<int32_t> c = n > 0 ? Codes(n, k, rng)
                                             : std::vector<int32_t>();
        sparsesign::PackSigns(c.data(), c.size(), n, rows.data() + r * w, w);
      }
      if (m > 2) std::fill(rows.begin() + 2 * w, rows.begin() + 3 * w, -1);
      std::vector<float> weights(m);
      for (auto& v : weights)
        v = static_cast<float>(rng() % 1000) / 300.0f - 1.0f;
      if (m > 1) weights[1] = 1e-40f;
      for (int weighted = 0; weighted < 3; ++weighted) {
        std::vector<float> wts = weights;
        if (weighted == 2) wts[m - 1] = (rng() & 1) ? NAN : -INFINITY;
        const std::vector<float>* wp = weighted ? &wts : nullptr;
        const std::string why =
            Compare(FloatFormat::kFloat32, CpuVote(rows, m, n, wp),
                    GpuVote(rows, m, n, wp, 0x11),
                    GpuVote(rows, m, n, wp, 0x7F));
        note(why, "packed_signs_vote n=" + std::to_string(n) + " m=" +
                      std::to_string(m) +
                      (weighted == 2 ? " bad weight"
                       : weighted    ? " weighted"
                                     : ""));
      }
    }
  }
  rows->push_back("| int32 | packed_signs encode + vote (orders, errors, "
                  "weights, abstaining rows) | up to " + std::to_string(top) +
                  " | " + std::to_string(cases - fails) + "/" +
                  std::to_string(cases) + " bit-identical |");
}

}  // namespace step_checks
