// GPU launchers for sparse_sign_encode, the fused accumulate-encode and
// majority_vote (wire format v1); the step's other ops are in step_cuda.h.
//
// No TensorFlow headers: device pointers, sizes and a stream in, a
// gpu::Status out, so the TF kernels and the standalone harness share one
// entry point. Results are bit-identical to the CPU core
// (../core/sparse_sign_core.h), and so are the error messages.
//
// Nothing here waits for the GPU. A call is two halves:
//   *Async    checks the arguments on the host, enqueues the kernels on
//             `stream`, and last a copy of a small report (NaN found, rows
//             dropped, ...) into host memory the caller provides (pinned
//             memory, so that the copy is asynchronous too);
//   *Outcome  once the stream has passed that copy (an event callback; the
//             harness synchronizes), turns the report into the status.
// The library never calls cudaStreamSynchronize or cudaDeviceSynchronize.
// Scratch memory is the caller's: ask *WorkspaceBytes first; it must be
// 16-byte aligned (checked).
#ifndef TF_SPARSESIGN_CUDA_SPARSE_SIGN_CUDA_H_
#define TF_SPARSESIGN_CUDA_SPARSE_SIGN_CUDA_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "../core/sparse_sign_core.h"
#include "select_plan.h"

namespace sparsesign {
namespace gpu {

// The core's Status plus one bit: `internal` marks a failure that is not
// the caller's input (a CUDA error, a broken invariant, a too-old driver),
// reported by TensorFlow as Internal rather than InvalidArgument.
struct Status : sparsesign::Status {
  bool internal = false;
  Status() = default;
  Status(const sparsesign::Status& s)  // NOLINT: the core's invalid input
      : sparsesign::Status(s) {}
  static Status Ok() { return Status(); }
  static Status Invalid(std::string msg) {
    return Status(sparsesign::Status::Invalid(std::move(msg)));
  }
  static Status Internal(std::string msg) {
    Status s(sparsesign::Status::Invalid(std::move(msg)));
    s.internal = true;
    return s;
  }
};

// What an encode leaves for the host to judge it (see select_plan.h).
using EncodeReport = plan::EncodeReport;

// Scratch bytes an encode needs for n elements of `format`.
size_t EncodeWorkspaceBytes(FloatFormat format, int64_t n);

// Enqueues sparsesign::Encode on `stream`: codes[0..k) get the k
// largest-magnitude nonzero entries of x, ascending by index, padded with
// -1; residual (optional, null for none; must not overlap codes or the
// workspace) gets x with the selected entries set to +0. *report (host
// memory, ideally pinned) is written by the stream after the kernels.
// x, codes, residual, workspace: device memory; x should be 16-byte
// aligned for full speed (any alignment of the element size works).
// Returns an error without enqueuing anything for bad arguments (the core's
// texts), or internal for a small or misaligned workspace or a failed launch.
Status EncodeAsync(FloatFormat format, const void* x, int64_t n, int64_t k,
                   int32_t* codes, void* residual, void* workspace,
                   size_t workspace_bytes, EncodeReport* report,
                   cudaStream_t stream);

// The status of an EncodeAsync call whose report has arrived: the core's
// NaN error, or internal when the GPU's own consistency check failed.
Status EncodeOutcome(const EncodeReport& report, int64_t n, int64_t k,
                     bool with_residual);

// Enqueues the fused error-feedback encode (the TF op
// SparseSignAccumulateEncode) on `stream`, in place on `memory`:
//   memory += gradient;  codes = Encode(memory, k);  memory[selected] = +0
// with the CPU kernel's arithmetic (float_ops.h: denormals flushed; 16-bit
// formats through float32, rounded to nearest even), so codes, memory and
// values equal the CPU op's bit for bit. values (optional, k entries of the
// format) gets the selected entries' sums in code order, 0 in padding.
// memory, gradient, codes, values, workspace: device memory, not
// overlapping (memory is read and written in place);
// workspace: EncodeWorkspaceBytes(format, n). Same argument errors as
// EncodeAsync; the status is EncodeOutcome(report, n, k, false). On NaN in
// the sum the memory holds the sums (nothing cleared), as on the CPU.
Status AccumulateEncodeAsync(FloatFormat format, void* memory,
                             const void* gradient, int64_t n, int64_t k,
                             int32_t* codes, void* values, void* workspace,
                             size_t workspace_bytes, EncodeReport* report,
                             cudaStream_t stream);

// What a vote leaves for the host (rows are numbered from 0; m = none).
struct VoteReport {
  int64_t dropped;            // invalid rows
  int64_t first_invalid_row;  // lowest invalid row
  int64_t bad_pos;            // its first offending position
  int64_t prev_pos;           // the non-padding position before, or -1
  int64_t bad_weight_row;     // lowest row with a non-finite weight
  int32_t bad_code;           // the code at bad_pos
  int32_t prev_code;          // the code at prev_pos
  float bad_weight;           // weights[bad_weight_row]
  uint32_t unused;
};

// Scratch bytes a vote needs for m rows over num_elements outputs.
size_t VoteWorkspaceBytes(int64_t m, int64_t num_elements, bool weighted);

// Enqueues sparsesign::MajorityVote over codes [m, k] int32, weights [m]
// float32 or null, into out [num_elements] float32 (all device memory);
// invalid rows always abstain here, and the outcome decides whether that
// is an error. *report (host memory) is written by the stream last.
// Weighted votes add the rows in row order in one launch (bit-identical
// float32 sums, no atomics); unweighted tallies are exact small integers.
Status MajorityVoteAsync(const int32_t* codes, int64_t m, int64_t k,
                         int64_t num_elements, const float* weights,
                         float* out, void* workspace, size_t workspace_bytes,
                         VoteReport* report, cudaStream_t stream);

// The status of a MajorityVoteAsync call whose report has arrived (the
// core's texts): a non-finite weight, or with drop == false the first
// invalid row; else *num_dropped gets the invalid rows (0 unless drop).
Status MajorityVoteOutcome(const VoteReport& report, int64_t m,
                           int64_t num_elements, bool drop,
                           int64_t* num_dropped);

// Whether this process can run the kernels: the NVIDIA driver supports
// the CUDA major version they were built with (CUDART_VERSION). Internal
// error with the versions and the fix otherwise. Host only, no context.
Status CheckDriver();

}  // namespace gpu
}  // namespace sparsesign

#endif  // TF_SPARSESIGN_CUDA_SPARSE_SIGN_CUDA_H_
