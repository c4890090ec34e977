// Packed-signs wire format ("packed", docs/WIRE.md) for signSGD-MV.
//
// No TensorFlow headers, like sparse_sign_core.h. Every coordinate is one
// ternary digit: 0 = not sent (abstains), 1 = +, 2 = -. Five digits make a
// byte (base 3, least significant first: byte = sum d_j * 3**j, at most
// 242), four bytes an int32 word (byte b = bits 8b..8b+7). Coordinate i is
// digit i % 5 of byte (i % 20) / 5 of word i / 20; a message over n
// coordinates has PackedWords(n) = ceil(n / 20) words, digits past n are 0.
#ifndef TF_SPARSESIGN_CORE_PACKED_H_
#define TF_SPARSESIGN_CORE_PACKED_H_

#include <cstdint>

#include "sparse_sign_core.h"

namespace sparsesign {

constexpr int64_t kPackedDigitsPerByte = 5;
constexpr int64_t kPackedDigitsPerWord = 20;
constexpr int kPackedMaxByte = 242;  // 3**5 - 1

// Words of a packed message over n coordinates.
inline int64_t PackedWords(int64_t n) {
  return (n + kPackedDigitsPerWord - 1) / kPackedDigitsPerWord;
}

// Writes the wire-format-v1 codes codes[0..k) (in any order; -1 anywhere is
// padding) as the packed message words[0..num_words). Errors (words are then
// unspecified, but nothing outside them is written): n outside
// [0, kMaxElements], num_words != PackedWords(n), a code below -1, an index
// >= n, or two codes for the same index.
Status PackSigns(const int32_t* codes, int64_t k, int64_t n, int32_t* words,
                 int64_t num_words);

// Majority vote straight from m packed messages of w words each:
//   out[i] = sign(sum_r w_r * s_{r,i}),  s = +1 / -1 / 0 for digit 1 / 2 / 0
// with the float32 sums of MajorityVote (rows in order, denormals in weights
// and partial sums counting as zero), so the result equals MajorityVote over
// the same signs as codes, bit for bit. A byte above 242 (no base-3 byte:
// how an abstaining row of -1 words reads) abstains for its five
// coordinates; digits past n are not read. Errors: n outside
// [0, kMaxElements], w != PackedWords(n), m < 0, a non-finite weight.
// weights may be null (all 1); out has n floats.
Status PackedVote(const int32_t* rows, int64_t m, int64_t w, int64_t n,
                  const float* weights, float* out,
                  const ParallelRunner& run);

// The errors above, shared with the GPU launchers (../cuda/packed.cu) so
// both devices give the same texts: the size checks of `op`
// ("packed_signs_encode" or "packed_signs_vote"); a code that is below -1
// or decodes to an index >= n, or (repeated) whose index appeared earlier,
// at `position`; a non-finite weight of `row`.
Status CheckPackedSize(const char* op, int64_t n, int64_t num_words);
Status PackedCodeError(int32_t code, int64_t position, int64_t n,
                       bool repeated);
Status PackedWeightError(float weight, int64_t row);

}  // namespace sparsesign

#endif  // TF_SPARSESIGN_CORE_PACKED_H_
