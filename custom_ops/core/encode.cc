// Top-K sign encoding: an O(n) selection on the magnitude bits.
//
// Ordering floats by |x| equals ordering the unsigned bit patterns with the
// sign bit cleared ("keys"); NaN keys are above the Inf key. The selected set
// is described by a threshold pair (T, I):
//   selected(i)  <=>  key_i > T  or  (key_i == T and i <= I)
// which encodes "largest magnitudes first, lower index wins ties" exactly.
// Every path below only has to find (T, I) and how many entries each chunk
// selects; one shared pass then writes the codes in index order.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <utility>
#include <vector>

#include "sparse_sign_core.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sparsesign {
namespace {

template <typename B, B kMag, B kInf>
struct Format {
  using Bits = B;
  static constexpr Bits kMagMask = kMag;  // clears the sign bit
  static constexpr Bits kInfKey = kInf;   // keys above this are NaN
  static constexpr int kWidth = static_cast<int>(sizeof(B) * 8);
};
using F16 = Format<uint16_t, 0x7FFF, 0x7C00>;
using BF16 = Format<uint16_t, 0x7FFF, 0x7F80>;
using F32 = Format<uint32_t, 0x7FFFFFFFu, 0x7F800000u>;
using F64 = Format<uint64_t, 0x7FFFFFFFFFFFFFFFull, 0x7FF0000000000000ull>;

constexpr int64_t kBlock = 64;               // elements tested branch-free
constexpr int64_t kMinChunk = int64_t{1} << 16;
constexpr int64_t kMaxChunks = 256;
constexpr int64_t kDirectMaxN = int64_t{1} << 16;  // below: plain select

struct Chunking {
  int64_t n = 0, size = 1, count = 0;
  explicit Chunking(int64_t n_) : n(n_) {
    size = std::max(kMinChunk, (n + kMaxChunks - 1) / kMaxChunks);
    count = n == 0 ? 0 : (n + size - 1) / size;
  }
  int64_t begin(int64_t c) const { return c * size; }
  int64_t end(int64_t c) const { return std::min(n, (c + 1) * size); }
};

// Runs body(c) for every chunk c through the runner.
template <typename Body>
void ForEachChunk(const Chunking& ch, const ParallelRunner& run, Body body) {
  if (ch.count == 0) return;
  if (ch.count == 1) {
    body(int64_t{0});
    return;
  }
  run(ch.count, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) body(c);
  });
}

// Block classification: 64 keys at a time into bit masks, so the passes
// touch individual entries only where a mask bit is set. Keys are below
// 2**(width-1), so signed SIMD compares order them exactly.
struct BlockMasks {
  uint64_t above;  // key > hi
  uint64_t below;  // key < lo
  bool nan;        // some key > the Inf key
};

template <typename F>
inline BlockMasks ClassifyGeneric(const typename F::Bits* x,
                                  typename F::Bits hi, typename F::Bits lo) {
  using Bits = typename F::Bits;
  BlockMasks m{0, 0, false};
  Bits nan = 0;
  for (int j = 0; j < kBlock; ++j) {
    const Bits key = x[j] & F::kMagMask;
    m.above |= static_cast<uint64_t>(key > hi) << j;
    m.below |= static_cast<uint64_t>(key < lo) << j;
    nan |= key > F::kInfKey;
  }
  m.nan = nan != 0;
  return m;
}

#if defined(__SSE2__)
inline uint64_t Movemask32(__m128i v) {
  return static_cast<uint64_t>(_mm_movemask_ps(_mm_castsi128_ps(v)));
}
inline uint64_t Movemask16(__m128i v) {
  return static_cast<uint64_t>(_mm_movemask_epi8(_mm_packs_epi16(v, v)) &
                               0xFF);
}

inline BlockMasks Classify32(const uint32_t* x, uint32_t hi, uint32_t lo,
                             uint32_t inf) {
  const __m128i mag = _mm_set1_epi32(0x7FFFFFFF);
  const __m128i vhi = _mm_set1_epi32(static_cast<int32_t>(hi));
  const __m128i vlo = _mm_set1_epi32(static_cast<int32_t>(lo));
  const __m128i vinf = _mm_set1_epi32(static_cast<int32_t>(inf));
  __m128i nan = _mm_setzero_si128();
  uint64_t above = 0, below = 0;
  for (int q = 0; q < kBlock / 4; ++q) {
    const __m128i key = _mm_and_si128(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 4 * q)), mag);
    above |= Movemask32(_mm_cmpgt_epi32(key, vhi)) << (4 * q);
    below |= Movemask32(_mm_cmpgt_epi32(vlo, key)) << (4 * q);
    nan = _mm_or_si128(nan, _mm_cmpgt_epi32(key, vinf));
  }
  return {above, below, _mm_movemask_epi8(nan) != 0};
}

inline BlockMasks Classify16(const uint16_t* x, uint16_t hi, uint16_t lo,
                             uint16_t inf) {
  const __m128i mag = _mm_set1_epi16(0x7FFF);
  const __m128i vhi = _mm_set1_epi16(static_cast<int16_t>(hi));
  const __m128i vlo = _mm_set1_epi16(static_cast<int16_t>(lo));
  const __m128i vinf = _mm_set1_epi16(static_cast<int16_t>(inf));
  __m128i nan = _mm_setzero_si128();
  uint64_t above = 0, below = 0;
  for (int q = 0; q < kBlock / 8; ++q) {
    const __m128i key = _mm_and_si128(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 8 * q)), mag);
    above |= Movemask16(_mm_cmpgt_epi16(key, vhi)) << (8 * q);
    below |= Movemask16(_mm_cmpgt_epi16(vlo, key)) << (8 * q);
    nan = _mm_or_si128(nan, _mm_cmpgt_epi16(key, vinf));
  }
  return {above, below, _mm_movemask_epi8(nan) != 0};
}
#endif

template <typename F>
inline BlockMasks Classify(const typename F::Bits* x, typename F::Bits hi,
                           typename F::Bits lo) {
#if defined(__SSE2__)
  if constexpr (sizeof(typename F::Bits) == 4) {
    return Classify32(x, hi, lo, F::kInfKey);
  } else if constexpr (sizeof(typename F::Bits) == 2) {
    return Classify16(x, hi, lo, F::kInfKey);
  }
#endif
  return ClassifyGeneric<F>(x, hi, lo);
}

// Bit j set iff key(x[j]) >= t.
template <typename F>
inline uint64_t MaskAtLeast(const typename F::Bits* x, typename F::Bits t) {
  // key >= t  <=>  not (key < t): reuse the "below" mask.
  return ~Classify<F>(x, F::kMagMask, t).below;
}

inline int LowestBit(uint64_t m) { return __builtin_ctzll(m); }

template <typename Bits>
struct Threshold {
  Bits key = 0;
  int64_t index = -1;
  bool Selects(Bits k, int64_t i) const {
    return k > key || (k == key && i <= index);
  }
};

// What a selection path hands to the writer.
template <typename Bits>
struct Selection {
  Threshold<Bits> threshold;
  std::vector<int64_t> per_chunk;  // selected entries in each chunk
};

template <typename Bits>
struct Candidate {
  Bits key;
  int64_t index;
};

// Strict weak order "comes first in the top-K": larger key, then lower index.
template <typename Bits>
bool Before(const Candidate<Bits>& a, const Candidate<Bits>& b) {
  return a.key > b.key || (a.key == b.key && a.index < b.index);
}

template <typename F>
int64_t FirstNaN(const typename F::Bits* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if ((x[i] & F::kMagMask) > F::kInfKey) return i;
  return -1;
}

Status NaNError(int64_t index, int64_t n) {
  return Status::Invalid(
      "sparse_sign_encode: input contains NaN (first at flat index " +
      std::to_string(index) + " of " + std::to_string(n) +
      "); NaN has no magnitude order, fix the gradient before encoding");
}

// Select among an explicit candidate list (in index order): the r-th entry
// in top-K order becomes the threshold.
template <typename Bits>
Threshold<Bits> ThresholdFromCandidates(std::vector<Candidate<Bits>> cands,
                                        int64_t r) {
  std::nth_element(cands.begin(), cands.begin() + (r - 1), cands.end(),
                   Before<Bits>);
  return Threshold<Bits>{cands[r - 1].key, cands[r - 1].index};
}

// Small inputs: collect all nonzero entries and select directly.
template <typename F>
Status DirectSelect(const typename F::Bits* x, int64_t n, int64_t k,
                    Selection<typename F::Bits>* sel) {
  using Bits = typename F::Bits;
  std::vector<Candidate<Bits>> cands;
  for (int64_t i = 0; i < n; ++i) {
    const Bits key = x[i] & F::kMagMask;
    if (key > F::kInfKey) return NaNError(i, n);
    if (key != 0) cands.push_back({key, i});
  }
  const int64_t nnz = static_cast<int64_t>(cands.size());
  if (nnz <= k) {
    sel->threshold = {1, n - 1};  // every nonzero entry
  } else {
    sel->threshold = ThresholdFromCandidates(std::move(cands), k);
  }
  sel->per_chunk.assign(1, std::min(k, nnz));
  return Status::Ok();
}

// Per-chunk result of the bracketing pass.
template <typename Bits>
struct BracketScan {
  int64_t above = 0;  // entries with key > hi
  bool nan = false;
  bool overflow = false;  // too many candidates: the sample misled us
  std::vector<Candidate<Bits>> cands;  // lo <= key <= hi, in index order
};

// Sampled bracketing: returns true and fills sel on success; false means
// "use the exact radix path" (never wrong, only slower).
template <typename F>
bool SampledSelect(const typename F::Bits* x, int64_t n, int64_t k,
                   const Chunking& ch, const ParallelRunner& run,
                   Selection<typename F::Bits>* sel, Status* status) {
  using Bits = typename F::Bits;
  const int64_t s = std::min(n, std::clamp<int64_t>(n / 128, 4096, 65536));
  const int64_t stride = n / s;
  std::vector<Bits> sample(s);
  for (int64_t i = 0; i < s; ++i)
    sample[i] = x[i * stride + stride / 2] & F::kMagMask;

  // Expected rank of the k-th largest in the sample, +- ~4 sigma.
  const double q = static_cast<double>(k) * s / n;
  const double margin = 4.0 * std::sqrt(q + 1.0) + 8.0;
  const int64_t hi_rank = static_cast<int64_t>(std::floor(q - margin));
  const int64_t lo_rank = static_cast<int64_t>(std::ceil(q + margin));
  auto desc = std::greater<Bits>();
  Bits hi = F::kMagMask, lo = 1;
  if (hi_rank >= 0) {
    std::nth_element(sample.begin(), sample.begin() + hi_rank, sample.end(),
                     desc);
    hi = sample[hi_rank];
  }
  if (lo_rank < s) {
    const auto from = sample.begin() + std::max<int64_t>(hi_rank + 1, 0);
    std::nth_element(from, sample.begin() + lo_rank, sample.end(), desc);
    lo = std::max<Bits>(sample[lo_rank], 1);
  }
  if (hi < lo) hi = lo;  // any lo <= hi is correct; this keeps the band sane
  const Bits span = static_cast<Bits>(hi - lo);
  const double per_rank = static_cast<double>(n) / s;
  const int64_t cap_total =
      static_cast<int64_t>(4.0 * (lo_rank - hi_rank + 1) * per_rank) + 4096;

  std::vector<BracketScan<Bits>> scans(ch.count);
  ForEachChunk(ch, run, [&](int64_t c) {
    BracketScan<Bits>& sc = scans[c];
    const int64_t b = ch.begin(c), e = ch.end(c);
    const int64_t cap = cap_total * (e - b) / n + 1024;
    int64_t i = b;
    auto scalar = [&](int64_t j) {
      const Bits key = x[j] & F::kMagMask;
      sc.above += key > hi;
      sc.nan |= key > F::kInfKey;
      if (static_cast<Bits>(key - lo) <= span) sc.cands.push_back({key, j});
    };
    for (; i + kBlock <= e; i += kBlock) {
      const BlockMasks bm = Classify<F>(x + i, hi, lo);
      sc.above += __builtin_popcountll(bm.above);
      sc.nan |= bm.nan;
      for (uint64_t band = ~(bm.above | bm.below); band; band &= band - 1) {
        const int64_t j = i + LowestBit(band);
        sc.cands.push_back({static_cast<Bits>(x[j] & F::kMagMask), j});
      }
      if (static_cast<int64_t>(sc.cands.size()) > cap) {
        sc.overflow = true;
        return;
      }
    }
    for (; i < e; ++i) scalar(i);
  });

  int64_t above = 0, ncand = 0;
  bool nan = false, overflow = false;
  for (const auto& sc : scans) {
    above += sc.above;
    ncand += static_cast<int64_t>(sc.cands.size());
    nan |= sc.nan;
    overflow |= sc.overflow;
  }
  if (nan) {
    *status = NaNError(FirstNaN<F>(x, n), n);
    return true;
  }
  if (overflow) return false;

  sel->per_chunk.assign(ch.count, 0);
  if (above < k && k <= above + ncand) {
    std::vector<Candidate<Bits>> all;
    all.reserve(ncand);
    for (const auto& sc : scans)
      all.insert(all.end(), sc.cands.begin(), sc.cands.end());
    sel->threshold = ThresholdFromCandidates(std::move(all), k - above);
    for (int64_t c = 0; c < ch.count; ++c) {
      int64_t cnt = scans[c].above;
      for (const auto& cd : scans[c].cands)
        cnt += sel->threshold.Selects(cd.key, cd.index);
      sel->per_chunk[c] = cnt;
    }
    return true;
  }
  if (lo == 1 && above + ncand < k) {  // fewer nonzeros than k: take them all
    sel->threshold = {1, n - 1};
    for (int64_t c = 0; c < ch.count; ++c)
      sel->per_chunk[c] =
          scans[c].above + static_cast<int64_t>(scans[c].cands.size());
    return true;
  }
  return false;
}

// Exact radix select on 16-bit digits of the key, most significant first.
// Bounded memory (one 64K histogram per worker); up to width/16 + 1 passes.
template <typename F>
Status RadixSelect(const typename F::Bits* x, int64_t n, int64_t k,
                   const Chunking& ch, const ParallelRunner& run,
                   Selection<typename F::Bits>* sel) {
  using Bits = typename F::Bits;
  constexpr int kDigit = 16;
  constexpr int64_t kBins = int64_t{1} << kDigit;
  Bits prefix = 0;    // the digits fixed so far
  int64_t need = k;   // entries still to take at or below the prefix
  bool nan = false;
  int64_t nnz = 0;
  std::mutex mu;

  for (int shift = F::kWidth - kDigit; shift >= 0; shift -= kDigit) {
    const bool top = shift + kDigit >= F::kWidth;
    std::vector<int64_t> hist(kBins, 0);
    run(ch.count, [&](int64_t cb, int64_t ce) {
      std::vector<uint32_t> local(kBins, 0);
      int64_t local_nnz = 0;
      bool local_nan = false;
      for (int64_t c = cb; c < ce; ++c) {
        for (int64_t i = ch.begin(c); i < ch.end(c); ++i) {
          const Bits key = x[i] & F::kMagMask;
          if (key == 0) continue;
          if (top) {
            ++local_nnz;
            local_nan |= key > F::kInfKey;
          } else if ((key >> (shift + kDigit)) != prefix) {
            continue;
          }
          ++local[(key >> shift) & (kBins - 1)];
        }
      }
      // n < 2**30, so 32-bit local counters cannot overflow.
      std::lock_guard<std::mutex> lock(mu);
      for (int64_t d = 0; d < kBins; ++d) hist[d] += local[d];
      nnz += local_nnz;
      nan |= local_nan;
    });
    if (top) {
      if (nan) return NaNError(FirstNaN<F>(x, n), n);
      if (nnz <= k) {
        sel->threshold = {1, n - 1};
        sel->per_chunk.assign(ch.count, 0);
        ForEachChunk(ch, run, [&](int64_t c) {
          int64_t cnt = 0;
          for (int64_t i = ch.begin(c); i < ch.end(c); ++i)
            cnt += (x[i] & F::kMagMask) != 0;
          sel->per_chunk[c] = cnt;
        });
        return Status::Ok();
      }
    }
    int64_t d = kBins - 1;
    for (; d > 0 && hist[d] < need; --d) need -= hist[d];
    prefix = static_cast<Bits>((static_cast<uint64_t>(prefix) << kDigit) |
                               static_cast<uint64_t>(d));
    if (shift == 0) break;
  }

  // prefix is now the exact k-th key T; take `need` of the entries equal to
  // it, lowest indices first.
  const Bits t = prefix;
  std::vector<int64_t> gt(ch.count, 0), eq(ch.count, 0);
  ForEachChunk(ch, run, [&](int64_t c) {
    for (int64_t i = ch.begin(c); i < ch.end(c); ++i) {
      const Bits key = x[i] & F::kMagMask;
      gt[c] += key > t;
      eq[c] += key == t;
    }
  });
  sel->per_chunk.assign(ch.count, 0);
  int64_t before = 0;
  sel->threshold = {t, -1};
  for (int64_t c = 0; c < ch.count; ++c) {
    const int64_t take = std::clamp<int64_t>(need - before, 0, eq[c]);
    sel->per_chunk[c] = gt[c] + take;
    if (take > 0 && before + eq[c] >= need) {  // the last tied entry is here
      int64_t left = need - before;
      for (int64_t i = ch.begin(c); i < ch.end(c); ++i) {
        if ((x[i] & F::kMagMask) == t && --left == 0) {
          sel->threshold.index = i;
          break;
        }
      }
    }
    before += eq[c];
  }
  return Status::Ok();
}

// The one writer: codes in index order, and optionally the residual.
template <typename F>
Status WriteCodes(const typename F::Bits* x, int64_t k,
                  const Chunking& ch, const ParallelRunner& run,
                  const Selection<typename F::Bits>& sel, int32_t* codes,
                  typename F::Bits* residual) {
  using Bits = typename F::Bits;
  std::vector<int64_t> offset(ch.count + 1, 0);
  for (int64_t c = 0; c < ch.count; ++c)
    offset[c + 1] = offset[c] + sel.per_chunk[c];
  if (offset[ch.count] > k)
    return Status::Invalid("sparse_sign_encode: internal error: selected " +
                           std::to_string(offset[ch.count]) + " > k = " +
                           std::to_string(k));
  const Threshold<Bits> th = sel.threshold;
  std::vector<char> mismatch(ch.count, 0);
  ForEachChunk(ch, run, [&](int64_t c) {
    const int64_t b = ch.begin(c), e = ch.end(c);
    if (residual) std::memcpy(residual + b, x + b, (e - b) * sizeof(Bits));
    int64_t pos = offset[c];
    const int64_t end_pos = offset[c + 1];
    auto visit = [&](int64_t i) {
      const Bits bits = x[i];
      const Bits key = bits & F::kMagMask;
      if (!th.Selects(key, i)) return;
      if (pos < end_pos) {
        const int32_t sign = static_cast<int32_t>(bits >> (F::kWidth - 1));
        codes[pos] = static_cast<int32_t>(i << 1) | sign;
      }
      ++pos;
      if (residual) residual[i] = 0;
    };
    int64_t i = b;
    for (; i + kBlock <= e; i += kBlock)
      for (uint64_t m = MaskAtLeast<F>(x + i, th.key); m; m &= m - 1)
        visit(i + LowestBit(m));
    for (; i < e; ++i) visit(i);
    mismatch[c] = pos != end_pos;
  });
  for (int64_t c = 0; c < ch.count; ++c)
    if (mismatch[c])
      return Status::Invalid(
          "sparse_sign_encode: internal error: chunk count mismatch");
  std::fill(codes + offset[ch.count], codes + k, kPadCode);
  return Status::Ok();
}

template <typename F>
Status EncodeTyped(const typename F::Bits* x, int64_t n, int64_t k,
                   int32_t* codes, typename F::Bits* residual,
                   const ParallelRunner& run) {
  using Bits = typename F::Bits;
  const Chunking ch(n);
  Selection<Bits> sel;
  if (k == 0) {
    // Nothing to select, but NaN is still an error.
    std::vector<char> nan(ch.count, 0);
    ForEachChunk(ch, run, [&](int64_t c) {
      int found = 0;
      for (int64_t i = ch.begin(c); i < ch.end(c); ++i)
        found |= (x[i] & F::kMagMask) > F::kInfKey;
      nan[c] = found != 0;
    });
    for (char f : nan)
      if (f) return NaNError(FirstNaN<F>(x, n), n);
    sel.threshold = {F::kMagMask, -1};  // selects nothing
    sel.per_chunk.assign(ch.count, 0);
    return WriteCodes<F>(x, k, ch, run, sel, codes, residual);
  }
  Status st;
  if (n < kDirectMaxN) {
    st = DirectSelect<F>(x, n, k, &sel);
  } else if (!SampledSelect<F>(x, n, k, ch, run, &sel, &st)) {
    st = RadixSelect<F>(x, n, k, ch, run, &sel);
  }
  if (!st.ok) return st;
  return WriteCodes<F>(x, k, ch, run, sel, codes, residual);
}

}  // namespace

ParallelRunner SerialRunner() {
  return [](int64_t num_tasks, const std::function<void(int64_t, int64_t)>& fn) {
    if (num_tasks > 0) fn(0, num_tasks);
  };
}

Status Encode(FloatFormat format, const void* x, int64_t n, int64_t k,
              int32_t* codes, void* residual, const ParallelRunner& run) {
  if (n < 0 || n >= kMaxElements)
    return Status::Invalid(
        "sparse_sign_encode: input has " + std::to_string(n) +
        " elements; the limit is 2**30 - 1 = " +
        std::to_string(kMaxElements - 1) +
        " (codes are int32: (index << 1) | sign). Split the tensor.");
  if (k < 0 || k > n)
    return Status::Invalid("sparse_sign_encode: k must satisfy 0 <= k <= N = " +
                           std::to_string(n) + ", got k = " +
                           std::to_string(k));
  switch (format) {
    case FloatFormat::kFloat16:
      return EncodeTyped<F16>(static_cast<const uint16_t*>(x), n, k, codes,
                              static_cast<uint16_t*>(residual), run);
    case FloatFormat::kBFloat16:
      return EncodeTyped<BF16>(static_cast<const uint16_t*>(x), n, k, codes,
                               static_cast<uint16_t*>(residual), run);
    case FloatFormat::kFloat32:
      return EncodeTyped<F32>(static_cast<const uint32_t*>(x), n, k, codes,
                              static_cast<uint32_t*>(residual), run);
    case FloatFormat::kFloat64:
      return EncodeTyped<F64>(static_cast<const uint64_t*>(x), n, k, codes,
                              static_cast<uint64_t*>(residual), run);
  }
  return Status::Invalid("sparse_sign_encode: unknown float format");
}

}  // namespace sparsesign
