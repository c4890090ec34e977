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
struct Candidate {  // 8 bytes for the 32-bit formats: indices are < 2**30
  Bits key;
  int32_t index;
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
Threshold<Bits> ThresholdFromCandidates(std::vector<Candidate<Bits>>& cands,
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
    if (key != 0) cands.push_back({key, static_cast<int32_t>(i)});
  }
  const int64_t nnz = static_cast<int64_t>(cands.size());
  if (nnz <= k) {
    sel->threshold = {1, n - 1};  // every nonzero entry
  } else {
    sel->threshold = ThresholdFromCandidates(cands, k);
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

// The bracket [lo, hi] around the k-th largest key, from a sample of s
// keys: the expected rank of the k-th largest in the sample, +- ~4 sigma.
// cap_total bounds the candidates a correct bracket collects.
template <typename Bits>
struct Bracket {
  Bits hi, lo;
  int64_t cap_total;
};

template <typename F>
Bracket<typename F::Bits> BracketFromSample(
    std::vector<typename F::Bits>& sample, int64_t n, int64_t k) {
  using Bits = typename F::Bits;
  const int64_t s = static_cast<int64_t>(sample.size());
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
  const double per_rank = static_cast<double>(n) / s;
  return {hi, lo,
          static_cast<int64_t>(4.0 * (lo_rank - hi_rank + 1) * per_rank) +
              4096};
}

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
  const Bracket<Bits> br = BracketFromSample<F>(sample, n, k);
  const Bits hi = br.hi, lo = br.lo;
  const Bits span = static_cast<Bits>(hi - lo);
  const int64_t cap_total = br.cap_total;

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
      if (static_cast<Bits>(key - lo) <= span)
        sc.cands.push_back({key, static_cast<int32_t>(j)});
    };
    for (; i + kBlock <= e; i += kBlock) {
      const BlockMasks bm = Classify<F>(x + i, hi, lo);
      sc.above += __builtin_popcountll(bm.above);
      sc.nan |= bm.nan;
      for (uint64_t band = ~(bm.above | bm.below); band; band &= band - 1) {
        const int64_t j = i + LowestBit(band);
        sc.cands.push_back({static_cast<Bits>(x[j] & F::kMagMask),
                            static_cast<int32_t>(j)});
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
    sel->threshold = ThresholdFromCandidates(all, k - above);
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
                  typename F::Bits* residual,
                  typename F::Bits* values = nullptr) {
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
    if (residual && residual != x)
      std::memcpy(residual + b, x + b, (e - b) * sizeof(Bits));
    int64_t pos = offset[c];
    const int64_t end_pos = offset[c + 1];
    auto visit = [&](int64_t i) {
      const Bits bits = x[i];
      const Bits key = bits & F::kMagMask;
      if (!th.Selects(key, i)) return;
      if (pos < end_pos) {
        const int32_t sign = static_cast<int32_t>(bits >> (F::kWidth - 1));
        codes[pos] = static_cast<int32_t>(i << 1) | sign;
        if (values) values[pos] = bits;
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
  if (values) std::fill(values + offset[ch.count], values + k, Bits{0});
  return Status::Ok();
}

template <typename F>
Status EncodeTyped(const typename F::Bits* x, int64_t n, int64_t k,
                   int32_t* codes, typename F::Bits* residual,
                   const ParallelRunner& run,
                   typename F::Bits* values = nullptr) {
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
    return WriteCodes<F>(x, k, ch, run, sel, codes, residual, values);
  }
  Status st;
  if (n < kDirectMaxN) {
    st = DirectSelect<F>(x, n, k, &sel);
  } else if (!SampledSelect<F>(x, n, k, ch, run, &sel, &st)) {
    st = RadixSelect<F>(x, n, k, ch, run, &sel);
  }
  if (!st.ok) return st;
  return WriteCodes<F>(x, k, ch, run, sel, codes, residual, values);
}

// ---------------------------------------------------------------------------
// Fused error-feedback encode: m += g in place, in the same pass that brackets
// the k-th magnitude of the sum. The pass clears the entries above the
// bracket at once (they are selected whatever the threshold turns out to
// be) and keeps their codes and old bits, and collects the candidates inside
// the bracket; after the threshold is fixed among the candidates, the
// selected ones are cleared and the codes merged. No second pass over n.
// The memory is written as Float and read as Bits only through memcpy or
// SIMD loads (no type punning); the exact fallbacks run after a compiler
// barrier.

template <typename Float>
void AddInPlace(Float* m, const Float* g, const Chunking& ch,
                const ParallelRunner& run) {
  ForEachChunk(ch, run, [&](int64_t c) {
    for (int64_t i = ch.begin(c); i < ch.end(c); ++i) m[i] += g[i];
  });
}

template <typename Float, typename Bits>
inline Bits BitsOf(Float v) {
  Bits bits;
  std::memcpy(&bits, &v, sizeof(Bits));
  return bits;
}

// Adds a block of kBlock entries in place and returns the mask of sums whose
// key is at least lo (NaN included: its key is above every number's).
template <typename F, typename Float>
inline uint64_t AddBlockMaskAtLeast(Float* m, const Float* g,
                                    typename F::Bits lo) {
#if defined(__SSE2__)
  if constexpr (sizeof(Float) == 4) {
    const __m128i mag = _mm_set1_epi32(0x7FFFFFFF);
    const __m128i below = _mm_set1_epi32(static_cast<int32_t>(lo - 1));
    uint64_t mask = 0;
    for (int q = 0; q < kBlock / 4; ++q) {
      const __m128 sum = _mm_add_ps(_mm_loadu_ps(m + 4 * q),
                                    _mm_loadu_ps(g + 4 * q));
      _mm_storeu_ps(m + 4 * q, sum);
      const __m128i key = _mm_and_si128(_mm_castps_si128(sum), mag);
      mask |= Movemask32(_mm_cmpgt_epi32(key, below)) << (4 * q);
    }
    return mask;
  }
#endif
  uint64_t mask = 0;
  for (int j = 0; j < kBlock; ++j) {
    m[j] += g[j];
    const typename F::Bits key =
        BitsOf<Float, typename F::Bits>(m[j]) & F::kMagMask;
    mask |= static_cast<uint64_t>(key >= lo) << j;
  }
  return mask;
}

template <typename Bits>
struct FusedScan {
  int64_t above = 0;
  bool nan = false;
  bool overflow = false;
  std::vector<int32_t> above_codes;    // key > hi, cleared, in index order
  std::vector<Bits> above_bits;        // their sums, to undo the clearing
  std::vector<Candidate<Bits>> cands;  // lo <= key <= hi, in index order
  std::vector<Bits> cand_bits;  // their sums: the writer needs no re-read
};

// The fused encode's working memory, kept per calling thread between calls:
// vectors this large come fresh from mmap, and touching them cost a page
// fault per 4 KiB on every call (a fifth of the encode at 10M entries).
template <typename Bits>
struct FusedScratch {
  std::vector<FusedScan<Bits>> scans;
  std::vector<Bits> sample;
  std::vector<Candidate<Bits>> all;

  static FusedScratch& ForThisThread(int64_t chunks) {
    static thread_local FusedScratch scratch;
    scratch.scans.resize(chunks);
    for (FusedScan<Bits>& sc : scratch.scans) {
      sc.above = 0;
      sc.nan = sc.overflow = false;
      sc.above_codes.clear();
      sc.above_bits.clear();
      sc.cands.clear();
      sc.cand_bits.clear();
    }
    return scratch;
  }

  // Gives the memory back after a call that needed more than kKeepBytes.
  void Trim() {
    constexpr size_t kKeepBytes = size_t{64} << 20;
    size_t bytes = sample.capacity() * sizeof(Bits) +
                   all.capacity() * sizeof(Candidate<Bits>);
    for (const FusedScan<Bits>& sc : scans)
      bytes += sc.above_codes.capacity() * sizeof(int32_t) +
               sc.above_bits.capacity() * sizeof(Bits) +
               sc.cands.capacity() * sizeof(Candidate<Bits>) +
               sc.cand_bits.capacity() * sizeof(Bits);
    if (bytes > kKeepBytes) *this = FusedScratch();
  }
};

template <typename F, typename Float>
Status AccumulateEncodeTyped(typename F::Bits* m, const Float* g, int64_t n,
                             int64_t k, int32_t* codes, typename F::Bits* values,
                             const ParallelRunner& run) {
  using Bits = typename F::Bits;
  static_assert(sizeof(Float) == sizeof(Bits), "float and key widths differ");
  Float* mf = reinterpret_cast<Float*>(m);
  const Chunking ch(n);
  if (n < kDirectMaxN || k == 0) {
    AddInPlace(mf, g, ch, run);
    asm volatile("" ::: "memory");  // EncodeTyped reads m as Bits
    return EncodeTyped<F>(m, n, k, codes, m, run, values);
  }
  // The bracket, from a sample of the sums in runs of 16 (one cache line of
  // float32): as SampledSelect, with far fewer cache misses on two arrays.
  constexpr int64_t kRun = 16;
  const int64_t s = std::min(n, std::clamp<int64_t>(n / 128, 4096, 65536)) /
                    kRun * kRun;
  const int64_t stride = n / (s / kRun);
  FusedScratch<Bits>& scratch = FusedScratch<Bits>::ForThisThread(ch.count);
  struct TrimOnExit {
    FusedScratch<Bits>& s;
    ~TrimOnExit() { s.Trim(); }
  } trim_on_exit{scratch};
  std::vector<Bits>& sample = scratch.sample;
  sample.resize(s);
  // The runs are scattered cache misses on two arrays: in parallel.
  const int64_t runs = s / kRun, run_tasks = std::min<int64_t>(ch.count, 16);
  run(run_tasks, [&](int64_t tb, int64_t te) {
    for (int64_t r = runs * tb / run_tasks; r < runs * te / run_tasks; ++r)
      for (int64_t j = 0; j < kRun; ++j) {
        const int64_t i = r * stride + j;
        sample[r * kRun + j] =
            BitsOf<Float, Bits>(mf[i] + g[i]) & F::kMagMask;
      }
  });
  const Bracket<Bits> br = BracketFromSample<F>(sample, n, k);
  const Bits hi = br.hi, lo = br.lo;
  const int64_t cap_total = br.cap_total;
  // Above the bracket there are fewer than k entries when the bracket is
  // right; more means the sample misled us (stop collecting, fall back).
  const int64_t above_cap_total = k + 4096;

  std::vector<FusedScan<Bits>>& scans = scratch.scans;
  ForEachChunk(ch, run, [&](int64_t c) {
    FusedScan<Bits>& sc = scans[c];
    const int64_t b = ch.begin(c), e = ch.end(c);
    const int64_t cap = cap_total * (e - b) / n + 1024;
    const int64_t above_cap = above_cap_total * (e - b) / n + 1024;
    sc.above_codes.reserve(k * (e - b) / n + 1024);
    sc.above_bits.reserve(k * (e - b) / n + 1024);
    sc.cands.reserve(cap / 2);
    sc.cand_bits.reserve(cap / 2);
    auto visit = [&](int64_t i) {  // key(m[i]) >= lo
      const Bits bits = BitsOf<Float, Bits>(mf[i]);
      const Bits key = bits & F::kMagMask;
      if (key > F::kInfKey) {
        sc.nan = true;
      } else if (key > hi) {
        ++sc.above;
        sc.above_codes.push_back(static_cast<int32_t>(i << 1) |
                                 static_cast<int32_t>(bits >> (F::kWidth - 1)));
        sc.above_bits.push_back(bits);
        mf[i] = Float(0);
      } else {
        sc.cands.push_back({key, static_cast<int32_t>(i)});
        sc.cand_bits.push_back(bits);
      }
    };
    int64_t i = b;
    for (; i + kBlock <= e; i += kBlock) {
      const uint64_t mask = AddBlockMaskAtLeast<F>(mf + i, g + i, lo);
      if (sc.overflow) continue;  // keep adding; selection falls back
      for (uint64_t bit = mask; bit; bit &= bit - 1) visit(i + LowestBit(bit));
      sc.overflow = static_cast<int64_t>(sc.cands.size()) > cap ||
                    sc.above > above_cap;
    }
    for (; i < e; ++i) {
      mf[i] += g[i];
      if (!sc.overflow &&
          (BitsOf<Float, Bits>(mf[i]) & F::kMagMask) >= lo)
        visit(i);
    }
  });

  int64_t above = 0, ncand = 0;
  bool nan = false, overflow = false;
  for (const auto& sc : scans) {
    above += sc.above;
    ncand += static_cast<int64_t>(sc.cands.size());
    nan |= sc.nan;
    overflow |= sc.overflow;
  }
  Threshold<Bits> th;
  const bool bracketed = !nan && !overflow && above < k && k <= above + ncand;
  const bool take_all = !nan && !overflow && lo == 1 && above + ncand < k;
  if (bracketed) {
    std::vector<Candidate<Bits>>& all = scratch.all;
    all.clear();
    for (const auto& sc : scans)
      all.insert(all.end(), sc.cands.begin(), sc.cands.end());
    th = ThresholdFromCandidates(all, k - above);
  } else if (take_all) {
    th = {1, n - 1};  // fewer nonzeros than k: take them all
  } else {
    // NaN, or the sample misled us: undo the early clearing, so m holds
    // exactly the sums, then report or select exactly on them.
    for (const auto& sc : scans)
      for (size_t j = 0; j < sc.above_codes.size(); ++j)
        std::memcpy(&mf[sc.above_codes[j] >> 1], &sc.above_bits[j],
                    sizeof(Bits));
    asm volatile("" ::: "memory");  // the paths below read m as Bits
    if (nan) return NaNError(FirstNaN<F>(m, n), n);
    return EncodeTyped<F>(m, n, k, codes, m, run, values);
  }

  // Codes: the cleared above-bracket codes and the candidates passing the
  // threshold (cleared now), merged in index order.
  std::vector<int64_t> offset(ch.count + 1, 0);
  for (int64_t c = 0; c < ch.count; ++c) {
    int64_t cnt = scans[c].above;
    for (const auto& cd : scans[c].cands) cnt += th.Selects(cd.key, cd.index);
    offset[c + 1] = offset[c] + cnt;
  }
  if (offset[ch.count] > k)
    return Status::Invalid("sparse_sign_encode: internal error: selected " +
                           std::to_string(offset[ch.count]) + " > k = " +
                           std::to_string(k));
  ForEachChunk(ch, run, [&](int64_t c) {
    const FusedScan<Bits>& sc = scans[c];
    int64_t pos = offset[c];
    auto put = [&](int32_t code, Bits bits) {
      codes[pos] = code;
      if (values) values[pos] = bits;
      ++pos;
    };
    size_t a = 0;
    for (size_t j = 0; j < sc.cands.size(); ++j) {
      const Candidate<Bits>& cd = sc.cands[j];
      if (!th.Selects(cd.key, cd.index)) continue;
      const int32_t index = cd.index;
      for (; a < sc.above_codes.size() && (sc.above_codes[a] >> 1) < index;
           ++a)
        put(sc.above_codes[a], sc.above_bits[a]);
      const Bits bits = sc.cand_bits[j];
      put((index << 1) | static_cast<int32_t>(bits >> (F::kWidth - 1)),
          bits);
      mf[index] = Float(0);
    }
    for (; a < sc.above_codes.size(); ++a)
      put(sc.above_codes[a], sc.above_bits[a]);
  });
  std::fill(codes + offset[ch.count], codes + k, kPadCode);
  if (values) std::fill(values + offset[ch.count], values + k, Bits{0});
  return Status::Ok();
}

}  // namespace

Status CheckEncodeSizes(int64_t n, int64_t k) {
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
  return Status::Ok();
}

ParallelRunner SerialRunner() {
  return [](int64_t num_tasks, const std::function<void(int64_t, int64_t)>& fn) {
    if (num_tasks > 0) fn(0, num_tasks);
  };
}

Status EncodeInPlace(FloatFormat format, void* x, int64_t n, int64_t k,
                     int32_t* codes, void* values, const ParallelRunner& run) {
  Status sizes = CheckEncodeSizes(n, k);
  if (!sizes.ok) return sizes;
  switch (format) {
    case FloatFormat::kFloat16:
      return EncodeTyped<F16>(static_cast<uint16_t*>(x), n, k, codes,
                              static_cast<uint16_t*>(x), run,
                              static_cast<uint16_t*>(values));
    case FloatFormat::kBFloat16:
      return EncodeTyped<BF16>(static_cast<uint16_t*>(x), n, k, codes,
                               static_cast<uint16_t*>(x), run,
                               static_cast<uint16_t*>(values));
    case FloatFormat::kFloat32:
      return EncodeTyped<F32>(static_cast<uint32_t*>(x), n, k, codes,
                              static_cast<uint32_t*>(x), run,
                              static_cast<uint32_t*>(values));
    case FloatFormat::kFloat64:
      return EncodeTyped<F64>(static_cast<uint64_t*>(x), n, k, codes,
                              static_cast<uint64_t*>(x), run,
                              static_cast<uint64_t*>(values));
  }
  return Status::Invalid("sparse_sign_encode: unknown float format");
}

Status Encode(FloatFormat format, const void* x, int64_t n, int64_t k,
              int32_t* codes, void* residual, const ParallelRunner& run) {
  Status sizes = CheckEncodeSizes(n, k);
  if (!sizes.ok) return sizes;
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

Status AccumulateEncode(FloatFormat format, void* memory,
                        const void* gradient, int64_t n, int64_t k,
                        int32_t* codes, void* values,
                        const ParallelRunner& run) {
  Status sizes = CheckEncodeSizes(n, k);
  if (!sizes.ok) return sizes;
  switch (format) {
    case FloatFormat::kFloat32:
      return AccumulateEncodeTyped<F32, float>(
          static_cast<uint32_t*>(memory), static_cast<const float*>(gradient),
          n, k, codes, static_cast<uint32_t*>(values), run);
    case FloatFormat::kFloat64:
      return AccumulateEncodeTyped<F64, double>(
          static_cast<uint64_t*>(memory),
          static_cast<const double*>(gradient), n, k, codes,
          static_cast<uint64_t*>(values), run);
    default:
      return Status::Invalid(
          "accumulate_encode: the fused path takes float32 or float64; add "
          "16-bit formats with the framework's own arithmetic, then call "
          "Encode with residual == x");
  }
}

}  // namespace sparsesign
