// GPU launchers for sparse_sign_encode and majority_vote (wire format v1).
//
// No TensorFlow headers: device pointers, sizes and a stream in, a
// sparsesign::Status out, so the TF kernels and the standalone harness share
// one entry point. Results are bit-identical to the CPU core
// (../core/sparse_sign_core.h), and so are the error messages.
//
// Each call enqueues its kernels on `stream` and then synchronizes that
// stream once, to read back the few words that decide the status (NaN found,
// invalid rows). Scratch memory is the caller's: ask *WorkspaceBytes first.
#ifndef TF_SPARSESIGN_CUDA_SPARSE_SIGN_CUDA_H_
#define TF_SPARSESIGN_CUDA_SPARSE_SIGN_CUDA_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "../core/sparse_sign_core.h"

namespace sparsesign {
namespace gpu {

// Scratch bytes Encode needs for n elements of `format`.
size_t EncodeWorkspaceBytes(FloatFormat format, int64_t n);

// As sparsesign::Encode: codes[0..k) get the k largest-magnitude nonzero
// entries of x, ascending by index, padded with -1; residual (optional, null
// for none; must not overlap codes or the workspace) gets x with the
// selected entries set to +0.
// x, codes, residual, workspace: device memory. x should be 16-byte aligned
// for full speed (any alignment of the element size works).
Status Encode(FloatFormat format, const void* x, int64_t n, int64_t k,
              int32_t* codes, void* residual, void* workspace,
              size_t workspace_bytes, cudaStream_t stream);

// Scratch bytes MajorityVote needs for m rows.
size_t VoteWorkspaceBytes(int64_t m);

// As sparsesign::MajorityVote: codes [m, k] int32, weights [m] float32 or
// null, out [num_elements] float32; all device memory. *num_dropped (host)
// receives the number of invalid rows when drop is true (else 0).
Status MajorityVote(const int32_t* codes, int64_t m, int64_t k,
                    int64_t num_elements, const float* weights, bool drop,
                    float* out, int64_t* num_dropped, void* workspace,
                    size_t workspace_bytes, cudaStream_t stream);

}  // namespace gpu
}  // namespace sparsesign

#endif  // TF_SPARSESIGN_CUDA_SPARSE_SIGN_CUDA_H_
