// The launchers called synchronously, for the harness and the self-tests
// only: enqueue, wait for the stream, read the outcome. The library itself
// never waits (see ../sparse_sign_cuda.h); the TF kernels finish in an event
// callback instead.
#ifndef TF_SPARSESIGN_CUDA_HARNESS_SYNC_CALLS_H_
#define TF_SPARSESIGN_CUDA_HARNESS_SYNC_CALLS_H_

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

#include "../sparse_sign_cuda.h"

namespace sparsesign {
namespace gpu {
namespace sync {

// One pinned report of each kind, reused by every call (one at a time).
template <typename Report>
Report* PinnedReport() {
  static Report* report = [] {
    void* p = nullptr;
    if (cudaMallocHost(&p, sizeof(Report)) != cudaSuccess) {
      std::fprintf(stderr, "cudaMallocHost failed\n");
      std::exit(2);
    }
    return static_cast<Report*>(p);
  }();
  return report;
}

inline Status Wait(const char* op, cudaStream_t stream) {
  const cudaError_t err = cudaStreamSynchronize(stream);
  return err == cudaSuccess ? Status::Ok()
                            : Status::Internal(std::string(op) +
                                               ": CUDA error: " +
                                               cudaGetErrorName(err));
}

inline Status Encode(FloatFormat format, const void* x, int64_t n, int64_t k,
                     int32_t* codes, void* residual, void* workspace,
                     size_t workspace_bytes, cudaStream_t stream = nullptr) {
  EncodeReport* report = PinnedReport<EncodeReport>();
  Status st = EncodeAsync(format, x, n, k, codes, residual, workspace,
                          workspace_bytes, report, stream);
  if (st.ok) st = Wait("sparse_sign_encode", stream);
  return st.ok ? EncodeOutcome(*report, n, k, residual != nullptr) : st;
}

inline Status MajorityVote(const int32_t* codes, int64_t m, int64_t k,
                           int64_t num_elements, const float* weights,
                           bool drop, float* out, int64_t* num_dropped,
                           void* workspace, size_t workspace_bytes,
                           cudaStream_t stream = nullptr) {
  VoteReport* report = PinnedReport<VoteReport>();
  Status st = MajorityVoteAsync(codes, m, k, num_elements, weights, out,
                                workspace, workspace_bytes, report, stream);
  if (st.ok) st = Wait("majority_vote", stream);
  return st.ok ? MajorityVoteOutcome(*report, m, num_elements, drop,
                                     num_dropped)
               : st;
}

}  // namespace sync
}  // namespace gpu
}  // namespace sparsesign

#endif  // TF_SPARSESIGN_CUDA_HARNESS_SYNC_CALLS_H_
