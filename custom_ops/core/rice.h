// Rice-coded wire format ("rice", v1) for sparse sign messages.
//
// No TensorFlow headers, like sparse_sign_core.h: a bare compiler builds it.
// The input is a wire-format-v1 message (int32 codes (index << 1) | sign,
// ascending by index, -1 = padding, anywhere); the output is a stream of
// 32-bit words (see docs/WIRE.md for the full specification):
//
//   word 0   W      words used, header included (the message length)
//   word 1   count  entries (non-padding codes)
//   word 2   tag    kRiceTagBase | r   (magic, version 1, Rice parameter r)
//   words 3..W-1    the bit stream, least significant bit of each word first
//
// Per entry, with gap = index - previous index - 1 (previous = -1 at the
// start): gap >> r as that many 0 bits and a 1 bit, then the sign bit, then
// the r low bits of the gap, low bit first. Unused bits of the last word are
// 0. r = RiceParameter(N, count), so the stream is canonical: a decoder
// accepts exactly the streams the encoder produces, plus trailing zero words
// (so messages padded to a common length still decode).
#ifndef TF_SPARSESIGN_CORE_RICE_H_
#define TF_SPARSESIGN_CORE_RICE_H_

#include <cstdint>

#include "sparse_sign_core.h"

namespace sparsesign {

constexpr int64_t kRiceHeaderWords = 3;
// Tag word without r: magic 0x5269 ("Ri") in the top half, version 1 above r.
constexpr int32_t kRiceTagBase = (0x5269 << 16) | (1 << 8);

// The Rice parameter for `count` entries among n positions: the smallest
// r >= 0 with 2**r >= ln(phi) * n / count (phi the golden ratio), which is
// the optimal power-of-two Golomb parameter for geometric gaps (Kiely 2004).
// Integer-only (ln(phi) ~ 31537 / 65536) so every implementation agrees.
// 0 when count == 0.
int RiceParameter(int64_t n, int64_t count);

// Upper bound on the words of any message of at most k entries over n
// positions (header included): callers allocate this much.
int64_t RiceMaxWords(int64_t n, int64_t k);

// Validates codes[0..k) as a wire-format-v1 message over n positions
// (codes >= -1, indices < n and strictly increasing) and returns the exact
// number of words RiceEncode writes in *num_words.
Status RiceEncodedWords(const int32_t* codes, int64_t k, int64_t n,
                        int64_t* num_words);

// Validates codes like RiceEncodedWords and writes the message into
// words[0..num_words); num_words must be what RiceEncodedWords returned for
// the same codes (else an error, and nothing is written past num_words).
Status RiceEncode(const int32_t* codes, int64_t k, int64_t n, int32_t* words,
                  int64_t num_words);

// Decodes the message in words[0..avail) into codes[0..k): the entries
// ascending, then -1. Reads nothing outside words[0..avail). Any deviation
// from the canonical stream is an error, and codes are then all -1:
// avail < 3, W outside [3, avail], count outside [0, min(k, n)], a wrong
// tag or r, a stream that ends early, an index >= n, extra words or nonzero
// unused bits inside W, or a nonzero word in words[W..avail).
Status RiceDecode(const int32_t* words, int64_t avail, int64_t n, int64_t k,
                  int32_t* codes);

}  // namespace sparsesign

#endif  // TF_SPARSESIGN_CORE_RICE_H_
