// GPU launchers for the step's other ops: the sparse SGD write
// (SparseSignScatterSub), the finiteness check (SparseSignCheckFinite) and
// packed signs (PackedSignsEncode, PackedSignsVote). Same shape as
// sparse_sign_cuda.h: no TensorFlow, device pointers and a stream in;
// *Async checks the arguments on the host, enqueues the kernels and last a
// copy of a small report into host memory the caller provides (pinned);
// *Outcome turns the arrived report into the status, with the CPU kernels'
// texts (../core/step_errors.h, ../core/packed.h). Nothing here waits for
// the GPU. Every launcher takes a scratch workspace of StepWorkspaceBytes()
// (16-byte aligned, device memory) for its device-side report.
#ifndef TF_SPARSESIGN_CUDA_STEP_CUDA_H_
#define TF_SPARSESIGN_CUDA_STEP_CUDA_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "sparse_sign_cuda.h"

namespace sparsesign {
namespace gpu {

// Scratch bytes of every launcher in this file.
size_t StepWorkspaceBytes();

// ---------------------------------------------------------------- scatter
struct ScatterReport {
  uint64_t bad_position;  // lowest i with indices[i] outside [0, n); ~0: none
  int64_t bad_index;      // indices[bad_position]
  uint32_t unordered;     // indices not strictly ascending (ordered write)
  uint32_t unused;
};

// variable.flat[indices[i]] -= updates[i] for i in [0, u), in place, with
// the CPU kernel's arithmetic (float_ops.h), bit for bit. Every index is
// checked on the device before anything is written: one bad index and
// nothing is written. Strictly ascending indices (what the step passes)
// are written in parallel; any other order (repeats included) is written
// by one thread in index-array order, which is exact and slow.
// variable: n elements of `format`; indices: int32 [u]; updates: [u] of
// `format`; all device memory.
Status ScatterSubAsync(FloatFormat format, void* variable, int64_t n,
                       const int32_t* indices, const void* updates, int64_t u,
                       void* workspace, size_t workspace_bytes,
                       ScatterReport* report, cudaStream_t stream);

// The first bad index as the CPU kernel reports it (`shape`: the
// variable's TensorShape::DebugString).
Status ScatterSubOutcome(const ScatterReport& report, int64_t n,
                         const std::string& shape);

// ----------------------------------------------------------------- finite
struct FiniteReport {
  uint64_t bad;    // entries that are NaN or infinite
  uint64_t first;  // the lowest such index; ~0: none
  uint32_t kind;   // x[first]: 0 nan, 1 inf, 2 -inf
  uint32_t unused;
};

// Counts the non-finite entries of x (n elements of `format`, device
// memory) and finds the first, in one pass.
Status CheckFiniteAsync(FloatFormat format, const void* x, int64_t n,
                        void* workspace, size_t workspace_bytes,
                        FiniteReport* report, cudaStream_t stream);

// OK, or the CPU kernel's error: `message`, the count and the first one.
Status CheckFiniteOutcome(const FiniteReport& report, int64_t n,
                          const std::string& message);

// ----------------------------------------------------------------- packed
struct PackReport {
  uint64_t position;  // the failing code's position
  int32_t code;       // codes[position]
  uint32_t error;     // 0 none, 1 bad code, 2 index repeated
};

// sparsesign::PackSigns on the device: codes [k] (any order, -1 padding)
// into words [num_words]; the same argument checks on the host, the same
// errors (the first failing position, as the CPU loop finds it).
Status PackSignsAsync(const int32_t* codes, int64_t k, int64_t n,
                      int32_t* words, int64_t num_words, void* workspace,
                      size_t workspace_bytes, PackReport* report,
                      cudaStream_t stream);
Status PackSignsOutcome(const PackReport& report, int64_t n);

struct PackedVoteReport {
  uint64_t bad_weight_row;  // lowest row with a non-finite weight; ~0: none
  float bad_weight;
  uint32_t unused;
};

// sparsesign::PackedVote on the device: rows [m, w] int32, weights [m]
// float32 or null, out [n] float32; rows are added in row order per
// coordinate (float32, denormals flushed as the core does), so the votes
// equal the CPU's bit for bit.
Status PackedVoteAsync(const int32_t* rows, int64_t m, int64_t w, int64_t n,
                       const float* weights, float* out, void* workspace,
                       size_t workspace_bytes, PackedVoteReport* report,
                       cudaStream_t stream);
Status PackedVoteOutcome(const PackedVoteReport& report);

}  // namespace gpu
}  // namespace sparsesign

#endif  // TF_SPARSESIGN_CUDA_STEP_CUDA_H_
