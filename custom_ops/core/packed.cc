// Packed signs: codes -> ternary digits, and the vote read straight from the
// digits (no [M, N] array of codes). Format: packed.h and docs/WIRE.md.
#include "packed.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

namespace sparsesign {
namespace {

constexpr int64_t kMinWords = int64_t{1} << 12;  // words per parallel task
constexpr int64_t kMaxRanges = 64;
constexpr int64_t kTileWords = 512;  // 10,240 coordinates: stays in L1/L2
constexpr uint32_t kPow3[kPackedDigitsPerByte] = {1, 3, 9, 27, 81};

constexpr float kTiny = 1.17549435e-38f;  // as in vote.cc
inline float Flush(float v) { return std::fabs(v) < kTiny ? 0.0f : v; }

// Per byte: the signs (+1, -1, 0) and the base-3 digits of its five
// coordinates; bytes above 242: signs 0 (abstain).
struct ByteTables {
  std::array<std::array<int8_t, kPackedDigitsPerByte>, 256> sign{};
  std::array<std::array<uint8_t, kPackedDigitsPerByte>, 256> digit{};
  ByteTables() {
    for (int b = 0; b < 256; ++b)
      for (int j = 0; j < kPackedDigitsPerByte; ++j) {
        const int d = (b / static_cast<int>(kPow3[j])) % 3;
        digit[b][j] = static_cast<uint8_t>(d);
        if (b <= kPackedMaxByte)
          sign[b][j] = static_cast<int8_t>(d == 1 ? 1 : d == 2 ? -1 : 0);
      }
  }
};
const ByteTables& Tables() {
  static const ByteTables tables;
  return tables;
}

}  // namespace

Status CheckPackedSize(const char* op, int64_t n, int64_t num_words) {
  if (n < 0 || n > kMaxElements)
    return Status::Invalid(std::string(op) +
                           ": num_elements must be in [0, 2**30], got " +
                           std::to_string(n));
  if (num_words != PackedWords(n))
    return Status::Invalid(
        std::string(op) + ": a packed message over " + std::to_string(n) +
        " coordinates has ceil(" + std::to_string(n) + " / 20) = " +
        std::to_string(PackedWords(n)) + " words, got " +
        std::to_string(num_words));
  return Status::Ok();
}

Status PackedCodeError(int32_t code, int64_t position, int64_t n,
                       bool repeated) {
  const int64_t idx = code >> 1;
  if (repeated)
    return Status::Invalid("packed_signs_encode: index " +
                           std::to_string(idx) + " appears twice (code " +
                           std::to_string(code) + " at position " +
                           std::to_string(position) + ")");
  return Status::Invalid(
      "packed_signs_encode: code " + std::to_string(code) + " at position " +
      std::to_string(position) +
      (code < kPadCode ? std::string(" is negative and not the padding "
                                     "code -1")
                       : " decodes to index " + std::to_string(idx) +
                             ", outside [0, " + std::to_string(n) + ")"));
}

Status PackedWeightError(float weight, int64_t row) {
  return Status::Invalid("packed_signs_vote: weights must be finite, got " +
                         std::to_string(weight) + " for row " +
                         std::to_string(row));
}

Status PackSigns(const int32_t* codes, int64_t k, int64_t n, int32_t* words,
                 int64_t num_words) {
  Status st = CheckPackedSize("packed_signs_encode", n, num_words);
  if (!st.ok) return st;
  if (k < 0)
    return Status::Invalid("packed_signs_encode: k must be >= 0, got " +
                           std::to_string(k));
  const auto& digit = Tables().digit;
  uint32_t* out = reinterpret_cast<uint32_t*>(words);
  std::fill(out, out + num_words, 0u);
  for (int64_t j = 0; j < k; ++j) {
    const int32_t code = codes[j];
    if (code == kPadCode) continue;
    const int64_t idx = code >> 1;
    if (code < kPadCode || idx >= n) return PackedCodeError(code, j, n, false);
    const int64_t r = idx % kPackedDigitsPerWord;
    const int shift = static_cast<int>(8 * (r / kPackedDigitsPerByte));
    const int64_t d = r % kPackedDigitsPerByte;
    uint32_t& word = out[idx / kPackedDigitsPerWord];
    if (digit[(word >> shift) & 0xFFu][d] != 0)
      return PackedCodeError(code, j, n, true);
    word += ((1u + static_cast<uint32_t>(code & 1)) * kPow3[d]) << shift;
  }
  return Status::Ok();
}

Status PackedVote(const int32_t* rows, int64_t m, int64_t w, int64_t n,
                  const float* weights, float* out,
                  const ParallelRunner& run) {
  Status st = CheckPackedSize("packed_signs_vote", n, w);
  if (!st.ok) return st;
  if (m < 0)
    return Status::Invalid("packed_signs_vote: rows must have shape [M, W] "
                           "with M >= 0, got M = " + std::to_string(m));
  std::vector<float> weight(m, 1.0f);
  for (int64_t r = 0; weights && r < m; ++r) {
    if (!std::isfinite(weights[r])) return PackedWeightError(weights[r], r);
    weight[r] = Flush(weights[r]);
  }
  const auto& table = Tables().sign;
  // Each task owns a disjoint range of words, walked in tiles: every row is
  // added to the tile in row order, then the tile's signs are written. With
  // all weights 1 the sums are small integers: exact in int32 and in
  // float32 alike, so the int32 path gives the same votes, faster.
  const int64_t ranges = std::clamp<int64_t>(w / kMinWords, 1, kMaxRanges);
  const int64_t width = (w + ranges - 1) / ranges;
  auto tally = [&](int64_t tb, int64_t te) {
    std::vector<float> tile(weights ? kTileWords * kPackedDigitsPerWord : 0);
    std::vector<int32_t> count(weights ? 0
                                       : kTileWords * kPackedDigitsPerWord);
    for (int64_t t = tb; t < te; ++t) {
      const int64_t lo = t * width, hi = std::min(w, lo + width);
      for (int64_t a = lo; a < hi; a += kTileWords) {
        const int64_t b = std::min(hi, a + kTileWords);
        std::fill(tile.begin(), tile.end(), 0.0f);
        std::fill(count.begin(), count.end(), 0);
        for (int64_t r = 0; r < m; ++r) {
          const float wr = weight[r];
          const int32_t* row = rows + r * w;
          for (int64_t i = a; i < b; ++i) {
            const uint32_t word = static_cast<uint32_t>(row[i]);
            if (word == 0u) continue;  // twenty abstentions
            const int64_t base = (i - a) * kPackedDigitsPerWord;
            for (int byte = 0; byte < 4; ++byte) {
              const auto& s = table[(word >> (8 * byte)) & 0xFFu];
              const int64_t at = base + byte * kPackedDigitsPerByte;
              if (!weights) {
                for (int j = 0; j < kPackedDigitsPerByte; ++j)
                  count[at + j] += s[j];
                continue;
              }
              for (int j = 0; j < kPackedDigitsPerByte; ++j)
                if (s[j] != 0)
                  tile[at + j] = Flush(tile[at + j] + (s[j] > 0 ? wr : -wr));
            }
          }
        }
        const int64_t first = a * kPackedDigitsPerWord;
        const int64_t last = std::min(n, b * kPackedDigitsPerWord);
        for (int64_t i = first; i < last; ++i)
          out[i] = SignOf(weights ? tile[i - first]
                                  : static_cast<float>(count[i - first]));
      }
    }
  };
  RunTasks(ranges, tally, run);
  return Status::Ok();
}

}  // namespace sparsesign
