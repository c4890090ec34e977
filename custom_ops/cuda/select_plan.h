// Shared, branch-level logic of the GPU encoder and vote, written once for
// host and device so the CPU tests (harness/plan_selftest.cc) exercise the
// very code the kernels run. No CUDA runtime, no TensorFlow: builds with g++.
//
// Selection as a threshold pair: after the radix passes we know a key T and a
// count `tie_take`, and
//   selected(i)  <=>  key_i > T  or  (key_i == T and rank_i < tie_take)
// where rank_i counts the earlier entries with key == T (index order), so
// "lower index wins ties" falls out of a prefix scan in the compaction pass.
#ifndef TF_SPARSESIGN_CUDA_SELECT_PLAN_H_
#define TF_SPARSESIGN_CUDA_SELECT_PLAN_H_

#include <cstdint>

#if defined(__CUDACC__)
#define SS_HD __host__ __device__ __forceinline__
#else
#define SS_HD inline
#endif

namespace sparsesign {
namespace plan {

// Magnitude keys of a float format: bits with the sign bit cleared.
template <typename B, uint64_t kMag, uint64_t kInf>
struct KeyFormat {
  using Bits = B;
  static constexpr Bits kMagMask = static_cast<Bits>(kMag);
  static constexpr Bits kInfKey = static_cast<Bits>(kInf);  // above: NaN
  static constexpr int kWidth = static_cast<int>(sizeof(B) * 8);
  static constexpr int kKeyBits = kWidth - 1;  // the sign bit is cleared
};
using F16Keys = KeyFormat<uint16_t, 0x7FFF, 0x7C00>;
using BF16Keys = KeyFormat<uint16_t, 0x7FFF, 0x7F80>;
using F32Keys = KeyFormat<uint32_t, 0x7FFFFFFFu, 0x7F800000u>;
using F64Keys =
    KeyFormat<uint64_t, 0x7FFFFFFFFFFFFFFFull, 0x7FF0000000000000ull>;

// Radix digits, most significant first: 11 bits (a 2048-bin histogram fits
// in 8 KB of shared memory), the last digit takes what is left.
constexpr int kDigitBits = 11;
constexpr int kBins = 1 << kDigitBits;

struct DigitPass {
  int shift;  // key >> shift, masked to `bits`, is the digit
  int bits;
};

SS_HD int NumPasses(int key_bits) {
  return (key_bits + kDigitBits - 1) / kDigitBits;
}

SS_HD DigitPass PassAt(int key_bits, int p) {
  const int hi = key_bits - kDigitBits * p;
  const int bits = hi < kDigitBits ? hi : kDigitBits;
  return DigitPass{hi - bits, bits};
}

// Digit of `key` in pass `pass`, and whether the key belongs to the bucket
// fixed by the earlier passes (`prefix` holds their digits).
SS_HD uint32_t DigitOf(uint64_t key, DigitPass pass) {
  return static_cast<uint32_t>((key >> pass.shift) &
                               ((uint64_t{1} << pass.bits) - 1));
}
SS_HD bool InBucket(uint64_t key, DigitPass pass, uint64_t prefix, int p) {
  if (p == 0) return true;
  return (key >> (pass.shift + pass.bits)) == prefix;
}

// What the host reads back after an encode (one small copy at the end of
// the stream's work): enough to give the core's status.
struct EncodeReport {
  uint64_t nnz;        // nonzero entries (pass 0)
  uint64_t selected;   // written by the compaction's last tile (check)
  uint32_t first_nan;  // lowest NaN index, 0xFFFFFFFF if none
  uint32_t error;      // kErr* below
  uint32_t overflow;   // a code position >= k was computed (internal)
  uint32_t unused;
};

// Device-resident progress of one encode call. Every kernel reads it; only
// the single-block "choose" kernel and the compaction's last tile write it.
// The report comes first so that one copy of it is the whole read-back.
struct SelectState {
  EncodeReport report;
  uint64_t prefix;       // digits fixed so far
  int64_t need;          // entries still to take inside the prefix bucket
  uint32_t done;         // threshold known: later passes exit at once
  uint32_t collect;      // pass 1 copies the bucket's keys to the buffer
  uint64_t threshold;    // T
  int64_t tie_take;      // entries with key == T to take, lowest index first
  uint64_t cand_count;   // keys in the candidate buffer
  uint32_t tile_ticket;  // dynamic tile ids for the decoupled look-back
  uint32_t unused;
};

constexpr uint32_t kErrNone = 0;
constexpr uint32_t kErrNaN = 1;

SS_HD void InitState(SelectState* s) {
  s->report.nnz = 0;
  s->report.selected = 0;
  s->report.first_nan = 0xFFFFFFFFu;
  s->report.error = kErrNone;
  s->report.overflow = 0;
  s->report.unused = 0;
  s->prefix = 0;
  s->need = 0;
  s->done = 0;
  s->collect = 0;
  s->threshold = 0;
  s->tie_take = 0;
  s->cand_count = 0;
  s->tile_ticket = 0;
  s->unused = 0;
}

// After pass 0: decide the cases that need no digit search.
// Returns true when the threshold is already known (or an error was set).
SS_HD bool StartSelection(SelectState* s, int64_t k, uint64_t mag_mask) {
  if (s->report.first_nan != 0xFFFFFFFFu) {
    s->report.error = kErrNaN;
    s->done = 1;
  } else if (k == 0) {
    s->threshold = mag_mask;  // no key is above the largest one
    s->tie_take = 0;
    s->done = 1;
  } else if (s->report.nnz <= static_cast<uint64_t>(k)) {
    s->threshold = 0;  // every nonzero entry
    s->tie_take = 0;
    s->done = 1;
  } else {
    s->need = k;
  }
  return s->done != 0;
}

// Records the bucket chosen in pass p: `digit`, holding `bucket_count`
// entries of which `need_in_bucket` (>= 1) are to be taken.
SS_HD void Advance(SelectState* s, DigitPass pass, int p, int num_passes,
                   uint32_t digit, uint64_t bucket_count,
                   int64_t need_in_bucket) {
  s->prefix = (s->prefix << pass.bits) | digit;
  const uint64_t low = s->prefix << pass.shift;  // smallest key in bucket
  if (bucket_count == static_cast<uint64_t>(need_in_bucket)) {
    // The whole bucket is taken: key >= low (zero keys never count).
    s->threshold = low == 0 ? 0 : low - 1;
    s->tie_take = 0;
    s->done = 1;
  } else if (p == num_passes - 1) {
    s->threshold = s->prefix;  // all digits fixed: the exact k-th key
    s->tie_take = need_in_bucket;
    s->done = 1;
  } else {
    s->need = need_in_bucket;
  }
}

// Pass 1 copies the pass-0 bucket's keys to the candidate buffer when later
// passes exist to read them (not for 16-bit formats: pass 1 is their last)
// and the bucket fits.
SS_HD bool WorthCollecting(int num_passes, uint64_t bucket_count,
                           uint64_t capacity) {
  return num_passes > 2 && bucket_count <= capacity;
}

// Among bins scanned from the top, the one where the running count reaches
// `need`: returns true for the bin [before, before + count) covering it.
SS_HD bool BinCoversNeed(uint64_t before, uint64_t count, int64_t need) {
  return before < static_cast<uint64_t>(need) &&
         static_cast<uint64_t>(need) <= before + count;
}

SS_HD bool Selected(uint64_t key, uint64_t tie_rank, uint64_t threshold,
                    int64_t tie_take) {
  return key > threshold ||
         (key == threshold && tie_rank < static_cast<uint64_t>(tie_take));
}

// Position of a selected entry among the codes: entries above T before it
// plus the ties before it (at most tie_take of them).
SS_HD uint64_t CodePosition(uint64_t above_before, uint64_t ties_before,
                            int64_t tie_take) {
  const uint64_t t = static_cast<uint64_t>(tie_take);
  return above_before + (ties_before < t ? ties_before : t);
}

// Tile descriptors for the decoupled look-back: 2 flag bits and two 31-bit
// counts (entries above T, entries equal to T) in one 64-bit word, so one
// atomic store publishes a tile. Counts are below 2**30, so the fields of
// summed descriptors never carry into each other.
constexpr uint64_t kFlagAggregate = uint64_t{1} << 62;
constexpr uint64_t kFlagInclusive = uint64_t{2} << 62;
constexpr uint64_t kFlagMask = uint64_t{3} << 62;
constexpr uint64_t kCountMask = (uint64_t{1} << 31) - 1;

SS_HD uint64_t PackCounts(uint64_t above, uint64_t ties) {
  return above | (ties << 31);
}
SS_HD uint64_t AboveOf(uint64_t packed) { return packed & kCountMask; }
SS_HD uint64_t TiesOf(uint64_t packed) {
  return (packed >> 31) & kCountMask;
}

// Vote validation, one code at a time: true if code row[j] makes the row
// invalid. A row is invalid iff some position returns true; that matches
// core's ValidateRow (the walk back over padding is O(run length), and each
// run is walked by one position only, so a row costs O(k) in total).
SS_HD bool CodeBreaksRow(const int32_t* row, int64_t j,
                         int64_t num_elements) {
  const int32_t code = row[j];
  if (code == -1) return false;
  if (code < -1) return true;
  const int64_t index = code >> 1;
  if (index >= num_elements) return true;
  for (int64_t p = j - 1; p >= 0; --p) {
    const int32_t prev = row[p];
    if (prev == -1) continue;
    // A negative previous code breaks the row on its own.
    return prev >= 0 && (prev >> 1) >= index;
  }
  return false;
}

SS_HD float SignOf(float v) {
  return static_cast<float>((v > 0.0f) - (v < 0.0f));
}

}  // namespace plan
}  // namespace sparsesign

#endif  // TF_SPARSESIGN_CUDA_SELECT_PLAN_H_
