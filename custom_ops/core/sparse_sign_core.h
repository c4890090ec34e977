// Plain C++ core of tf_sparsesign: top-K sign encoding and majority vote.
//
// No TensorFlow headers here on purpose: the TF kernels, the CUDA harness and
// standalone tests all build against this file with a bare compiler.
//
// Wire format v1 (docs/WIRE.md): a code is the int32
//   (flat_index << 1) | (value < 0 ? 1 : 0)
// A message holds k codes ascending by index, padded at the tail with -1 when
// fewer than k nonzero entries exist. Ties in |value| go to the lower index.
#ifndef TF_SPARSESIGN_CORE_SPARSE_SIGN_CORE_H_
#define TF_SPARSESIGN_CORE_SPARSE_SIGN_CORE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace sparsesign {

// Largest number of elements an encoded tensor may have: the code
// (index << 1) | sign must stay a non-negative int32.
constexpr int64_t kMaxElements = int64_t{1} << 30;

// The padding code.
constexpr int32_t kPadCode = -1;

// Floating-point formats the encoder reads, as raw bit patterns.
enum class FloatFormat { kFloat16, kBFloat16, kFloat32, kFloat64 };

// Runs fn(begin, end) over disjoint sub-ranges covering [0, num_tasks),
// possibly concurrently. The TF kernel maps this onto the intra-op pool.
using ParallelRunner = std::function<void(
    int64_t num_tasks, const std::function<void(int64_t, int64_t)>& fn)>;

// A runner that runs everything on the calling thread.
ParallelRunner SerialRunner();

// fn(0, num_tasks) on the calling thread when there is one task, else
// through run.
inline void RunTasks(int64_t num_tasks,
                     const std::function<void(int64_t, int64_t)>& fn,
                     const ParallelRunner& run) {
  if (num_tasks > 1) {
    run(num_tasks, fn);
  } else {
    fn(0, num_tasks);
  }
}

// +1, 0 or -1 (0 for +-0), in a select form compilers vectorize.
inline float SignOf(float v) {
  return (v > 0.0f ? 1.0f : 0.0f) - (v < 0.0f ? 1.0f : 0.0f);
}

// Outcome of a core call: ok, or an invalid-argument message.
struct Status {
  bool ok = true;
  std::string message;
  static Status Ok() { return Status(); }
  static Status Invalid(std::string msg) {
    Status s;
    s.ok = false;
    s.message = std::move(msg);
    return s;
  }
};

// Selects the k nonzero entries of largest magnitude of x (n elements of
// `format`, flat row-major), writes their codes ascending by index to
// codes[0..k), padding with -1. If residual is not null it receives a copy
// of x with the selected entries set to +0 (the error-feedback remainder).
//
// Errors (nothing is guaranteed about the outputs then): NaN in x,
// k < 0 or k > n, n >= kMaxElements.
//
// The selection is O(n): a strided sample brackets the k-th magnitude, one
// pass counts the entries above the bracket and collects those inside it,
// an exact selection among the collected entries fixes the threshold, and a
// last pass writes the codes in index order. When the sample misleads (or n
// is small) an exact radix select on the magnitude bits is used instead.
//
// residual may be x itself (the selected entries are then cleared in place).
Status Encode(FloatFormat format, const void* x, int64_t n, int64_t k,
              int32_t* codes, void* residual, const ParallelRunner& run);

// Encode with the residual written into x itself; values (if not null,
// k entries of x's format) receives the selected entries' values in code
// order (0 in padding slots).
Status EncodeInPlace(FloatFormat format, void* x, int64_t n, int64_t k,
                     int32_t* codes, void* values, const ParallelRunner& run);

// The fused error-feedback encode (float32 and float64):
//   memory += gradient;  codes = Encode(memory, k);  memory[selected] = +0
// with one read of the gradient and one read-modify-write of the memory
// (the pass that adds also brackets the k-th magnitude and collects the
// indices the codes are written from). Same codes and memory as Encode on
// the sum with the residual written back, bit for bit; values as
// EncodeInPlace. Errors as Encode; on NaN in the sum, memory holds the sums
// (nothing cleared).
Status AccumulateEncode(FloatFormat format, void* memory,
                        const void* gradient, int64_t n, int64_t k,
                        int32_t* codes, void* values,
                        const ParallelRunner& run);

// The size checks of Encode, EncodeInPlace and AccumulateEncode (their
// errors' texts, shared with the GPU launchers): 0 <= n < kMaxElements and
// 0 <= k <= n.
Status CheckEncodeSizes(int64_t n, int64_t k);

// Majority vote over m rows of k codes each:
//   out[i] = sign(sum_r w_r * s_{r,i}),  s = +1/-1 if row r sent index i
//   with that sign, else 0; w_r = 1 when weights is null.
// Sums run in float32 in row order (so any implementation that adds rows in
// order gets bit-identical results); float32 denormals (|v| < 2**-126), in
// weights and in partial sums, count as zero so the FPU's flush-to-zero mode
// does not matter. -1 codes are padding and ignored.
//
// A row is invalid if it holds a code < -1, an index >= num_elements, or
// non-padding indices that are not strictly increasing. With drop=false the
// first invalid row gives an error naming the row and the code; with
// drop=true invalid rows abstain and *num_dropped counts them.
// Weights must be finite (error otherwise). out has num_elements floats.
Status MajorityVote(const int32_t* codes, int64_t m, int64_t k,
                    int64_t num_elements, const float* weights, bool drop,
                    float* out, int64_t* num_dropped,
                    const ParallelRunner& run);

// The same vote in sparse form: the indices (ascending) whose tally is not
// 0, and the tallies sum_r w_r s_{r,i} (float32, rows in order, flushed as
// MajorityVote does). Scattering their signs into zeros gives MajorityVote's
// out bit for bit (same validation and errors); |tally| ranks coordinates.
// Work is O(m*k*log m), independent of num_elements.
Status SparseMajorityVote(const int32_t* codes, int64_t m, int64_t k,
                          int64_t num_elements, const float* weights,
                          bool drop, std::vector<int32_t>* indices,
                          std::vector<float>* tallies, int64_t* num_dropped,
                          const ParallelRunner& run);

// Checks one row; returns an empty string if valid, else why not.
std::string ValidateRow(const int32_t* row, int64_t k, int64_t num_elements);

}  // namespace sparsesign

#endif  // TF_SPARSESIGN_CORE_SPARSE_SIGN_CORE_H_
