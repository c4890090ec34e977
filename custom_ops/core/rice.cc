// Rice coder for sparse sign messages (format in rice.h and docs/WIRE.md).
//
// Bits are written and read least significant first through a 64-bit
// accumulator; the reader refills only from words it was given, so no input,
// however corrupt, makes it read outside the buffer.
#include "rice.h"

#include <algorithm>
#include <string>

namespace sparsesign {
namespace {

constexpr int kMaxRiceParameter = 30;
// ln(phi) = 0.48121... ~ kLnPhiNum / 2**16.
constexpr int64_t kLnPhiNum = 31537;

inline int64_t IndexOf(int32_t code) { return code >> 1; }

std::string Str(int64_t v) { return std::to_string(v); }

// Bits of one message with `count` entries whose gaps sum to at most
// n - count, coded with parameter r (the worst case of that count).
int64_t MaxStreamBits(int64_t n, int64_t count) {
  if (count <= 0) return 0;
  const int r = RiceParameter(n, count);
  return count * (r + 2) + ((n - count) >> r);
}

class BitWriter {
 public:
  BitWriter(uint32_t* out, int64_t capacity)
      : out_(out), end_(out + capacity) {}

  // Appends the low `len` bits of `bits` (len <= 32).
  bool Put(uint64_t bits, int len) {
    acc_ |= bits << fill_;
    fill_ += len;
    if (fill_ >= 32) {
      if (out_ == end_) return false;
      *out_++ = static_cast<uint32_t>(acc_);
      acc_ >>= 32;
      fill_ -= 32;
    }
    return true;
  }

  bool PutZeros(int64_t len) {
    for (; len >= 32; len -= 32)
      if (!Put(0, 32)) return false;
    return Put(0, static_cast<int>(len));
  }

  // Writes the partial last word; true if exactly `capacity` words were used.
  bool Finish() {
    if (fill_ > 0) {
      if (out_ == end_) return false;
      *out_++ = static_cast<uint32_t>(acc_);
    }
    return out_ == end_;
  }

 private:
  uint32_t* out_;
  uint32_t* const end_;
  uint64_t acc_ = 0;
  int fill_ = 0;
};

class BitReader {
 public:
  BitReader(const uint32_t* in, int64_t size) : in_(in), end_(in + size) {}

  // Counts 0 bits up to the next 1 bit and consumes both. False if the
  // stream ends first or the run exceeds max_zeros (checked per refill, so
  // a long corrupt run stops early).
  bool Unary(int64_t max_zeros, int64_t* zeros) {
    int64_t q = 0;
    for (;;) {
      Refill();
      if (buf_ != 0) break;
      if (bits_ == 0) return false;  // stream exhausted
      q += bits_;
      bits_ = 0;
      if (q > max_zeros) return false;
    }
    const int tz = __builtin_ctzll(buf_);  // tz < bits_: buf_ holds bits_ bits
    q += tz;
    if (q > max_zeros) return false;
    Drop(tz + 1);
    *zeros = q;
    return true;
  }

  // Reads `len` bits (len <= 32) into *value; false if the stream ends.
  bool Get(int len, uint32_t* value) {
    Refill();
    if (bits_ < len) return false;
    *value = static_cast<uint32_t>(buf_ & ((uint64_t{1} << len) - 1));
    Drop(len);
    return true;
  }

  // True if fewer than 32 bits remain unread and all of them are 0: the
  // writer pads only the last word, with zeros.
  bool AtCanonicalEnd() {
    return in_ == end_ && bits_ < 32 && buf_ == 0;
  }

 private:
  void Refill() {
    while (bits_ <= 32 && in_ < end_) {
      buf_ |= static_cast<uint64_t>(*in_++) << bits_;
      bits_ += 32;
    }
  }
  void Drop(int len) {  // len <= bits_ <= 64
    buf_ = len >= 64 ? 0 : buf_ >> len;
    bits_ -= len;
  }

  const uint32_t* in_;
  const uint32_t* const end_;
  uint64_t buf_ = 0;
  int bits_ = 0;
};

// Counts the entries of a wire-format-v1 message, or explains why invalid.
Status CountEntries(const int32_t* codes, int64_t k, int64_t n,
                    int64_t* count) {
  int64_t c = 0, prev = -1;
  bool ok = true;
  for (int64_t j = 0; j < k; ++j) {
    const int32_t code = codes[j];
    if (code == kPadCode) continue;
    const int64_t idx = IndexOf(code);
    ok &= (code >= 0) & (idx < n) & (idx > prev);
    prev = idx;
    ++c;
  }
  if (!ok)
    return Status::Invalid("rice_encode: invalid codes: " +
                           ValidateRow(codes, k, n));
  *count = c;
  return Status::Ok();
}

}  // namespace

int RiceParameter(int64_t n, int64_t count) {
  if (count <= 0 || n <= 0) return 0;
  n = std::min(n, kMaxElements);  // keeps n * kLnPhiNum in range
  // Smallest r with count * 2**r >= ceil(ln(phi) * n), integers only.
  const int64_t target = (n * kLnPhiNum + 0xFFFF) >> 16;
  int r = 0;
  while (r < kMaxRiceParameter && (count << r) < target) ++r;
  return r;
}

int64_t RiceMaxWords(int64_t n, int64_t k) {
  n = std::clamp<int64_t>(n, 0, kMaxElements);
  const int64_t kmax = std::clamp<int64_t>(k, 0, n);
  // For a fixed r the worst case grows with count, and r only falls as
  // count grows: the maximum is at kmax or at the last count of some r.
  int64_t bits = MaxStreamBits(n, kmax);
  const int64_t target = (n * kLnPhiNum + 0xFFFF) >> 16;
  for (int r = 1; r <= kMaxRiceParameter; ++r) {
    // Counts below ceil(target / 2**(r-1)) get a parameter >= r.
    const int64_t step = int64_t{1} << (r - 1);
    const int64_t last = std::min(kmax, (target + step - 1) / step - 1);
    if (last >= 0) bits = std::max(bits, MaxStreamBits(n, last));
  }
  return kRiceHeaderWords + (bits + 31) / 32;
}

Status RiceEncodedWords(const int32_t* codes, int64_t k, int64_t n,
                        int64_t* num_words) {
  if (n < 0 || n > kMaxElements || k < 0)
    return Status::Invalid("rice_encode: need 0 <= num_elements <= 2**30 and "
                           "k >= 0, got num_elements = " + Str(n) +
                           ", k = " + Str(k));
  int64_t count = 0;
  Status st = CountEntries(codes, k, n, &count);
  if (!st.ok) return st;
  const int r = RiceParameter(n, count);
  int64_t bits = count * (r + 2), prev = -1;
  for (int64_t j = 0; j < k; ++j) {
    if (codes[j] == kPadCode) continue;
    const int64_t idx = IndexOf(codes[j]);
    bits += (idx - prev - 1) >> r;
    prev = idx;
  }
  *num_words = kRiceHeaderWords + (bits + 31) / 32;
  return Status::Ok();
}

Status RiceEncode(const int32_t* codes, int64_t k, int64_t n, int32_t* words,
                  int64_t num_words) {
  if (n < 0 || n > kMaxElements || k < 0 || num_words < kRiceHeaderWords)
    return Status::Invalid("rice_encode: need 0 <= num_elements <= 2**30, "
                           "k >= 0 and num_words >= 3");
  int64_t count = 0;
  Status st = CountEntries(codes, k, n, &count);
  if (!st.ok) return st;
  const int r = RiceParameter(n, count);
  words[0] = static_cast<int32_t>(num_words);
  words[1] = static_cast<int32_t>(count);
  words[2] = kRiceTagBase | r;
  BitWriter out(reinterpret_cast<uint32_t*>(words) + kRiceHeaderWords,
                num_words - kRiceHeaderWords);
  const uint64_t low_mask = (uint64_t{1} << r) - 1;
  int64_t prev = -1;
  bool fits = true;
  for (int64_t j = 0; j < k && fits; ++j) {
    const int32_t code = codes[j];
    if (code == kPadCode) continue;
    const int64_t gap = IndexOf(code) - prev - 1;
    prev = IndexOf(code);
    // Terminating 1, sign, then the r low bits: one field of r + 2 bits.
    const uint64_t field = 1 | (static_cast<uint64_t>(code & 1) << 1) |
                           ((static_cast<uint64_t>(gap) & low_mask) << 2);
    fits = out.PutZeros(gap >> r) && out.Put(field, r + 2);
  }
  // The writer refuses to pass num_words and reports whether it filled them.
  if (!fits || !out.Finish())
    return Status::Invalid("rice_encode: num_words = " + Str(num_words) +
                           " is not the message's size (RiceEncodedWords)");
  return Status::Ok();
}

Status RiceDecode(const int32_t* words, int64_t avail, int64_t n, int64_t k,
                  int32_t* codes) {
  if (k < 0) return Status::Invalid("rice_decode: k must be >= 0");
  std::fill(codes, codes + k, kPadCode);
  if (n < 0 || n > kMaxElements)
    return Status::Invalid("rice_decode: num_elements must be in [0, 2**30]"
                           ", got " + Str(n));
  if (avail < kRiceHeaderWords)
    return Status::Invalid("rice_decode: message has " + Str(avail) +
                           " words, shorter than the 3-word header");
  const int64_t used = words[0];
  if (used < kRiceHeaderWords || used > avail)
    return Status::Invalid("rice_decode: length word says " + Str(used) +
                           " words, but the buffer holds " + Str(avail) +
                           " (the header alone is 3)");
  const int64_t count = words[1];
  if (count < 0 || count > std::min(k, n))
    return Status::Invalid("rice_decode: entry count " + Str(count) +
                           " outside [0, min(k, num_elements)] = [0, " +
                           Str(std::min(k, n)) + "]");
  const int r = RiceParameter(n, count);
  if (words[2] != (kRiceTagBase | r))
    return Status::Invalid("rice_decode: tag word " + Str(words[2]) +
                           " is not the Rice v1 tag with parameter " +
                           Str(r) + " (expected " +
                           Str(kRiceTagBase | r) + ")");
  for (int64_t j = used; j < avail; ++j)
    if (words[j] != 0)
      return Status::Invalid("rice_decode: word " + Str(j) +
                             " after the message's " + Str(used) +
                             " words is not 0 (padding must be zeros)");

  BitReader in(reinterpret_cast<const uint32_t*>(words) + kRiceHeaderWords,
               used - kRiceHeaderWords);
  auto fail = [&](int64_t entry, const std::string& why) {
    std::fill(codes, codes + k, kPadCode);
    return Status::Invalid("rice_decode: entry " + Str(entry) + " of " +
                           Str(count) + ": " + why);
  };
  int64_t prev = -1;
  for (int64_t e = 0; e < count; ++e) {
    const int64_t room = n - 2 - prev;  // largest gap that stays below n
    if (room < 0) return fail(e, "no index left below num_elements");
    int64_t quotient = 0;
    uint32_t field = 0;
    if (!in.Unary(room >> r, &quotient))
      return fail(e, "stream ends early or the gap passes num_elements");
    if (!in.Get(r + 1, &field)) return fail(e, "stream ends early");
    const int64_t gap = (quotient << r) | (field >> 1);
    if (gap > room)
      return fail(e, "index " + Str(prev + 1 + gap) + " >= num_elements " +
                         Str(n));
    prev += 1 + gap;
    codes[e] = static_cast<int32_t>((prev << 1) | (field & 1));
  }
  if (!in.AtCanonicalEnd()) {
    std::fill(codes, codes + k, kPadCode);
    return Status::Invalid("rice_decode: extra bits or words after the last "
                           "entry (the length word says " + Str(used) + ")");
  }
  return Status::Ok();
}

}  // namespace sparsesign
