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
#include "../step_cuda.h"

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

// Enqueues (enqueue(report) returns the launch's status), waits for the
// stream, then returns outcome(*report).
template <typename Report, typename Enqueue, typename Outcome>
Status Run(const char* op, cudaStream_t stream, Enqueue enqueue,
           Outcome outcome) {
  Report* report = PinnedReport<Report>();
  Status st = enqueue(report);
  if (st.ok) st = Wait(op, stream);
  return st.ok ? outcome(*report) : st;
}

inline Status Encode(FloatFormat format, const void* x, int64_t n, int64_t k,
                     int32_t* codes, void* residual, void* workspace,
                     size_t workspace_bytes, cudaStream_t stream = nullptr) {
  return Run<EncodeReport>(
      "sparse_sign_encode", stream,
      [&](EncodeReport* r) {
        return EncodeAsync(format, x, n, k, codes, residual, workspace,
                           workspace_bytes, r, stream);
      },
      [&](const EncodeReport& r) {
        return EncodeOutcome(r, n, k, residual != nullptr);
      });
}

inline Status MajorityVote(const int32_t* codes, int64_t m, int64_t k,
                           int64_t num_elements, const float* weights,
                           bool drop, float* out, int64_t* num_dropped,
                           void* workspace, size_t workspace_bytes,
                           cudaStream_t stream = nullptr) {
  return Run<VoteReport>(
      "majority_vote", stream,
      [&](VoteReport* r) {
        return MajorityVoteAsync(codes, m, k, num_elements, weights, out,
                                 workspace, workspace_bytes, r, stream);
      },
      [&](const VoteReport& r) {
        return MajorityVoteOutcome(r, m, num_elements, drop, num_dropped);
      });
}

inline Status AccumulateEncode(FloatFormat format, void* memory,
                               const void* gradient, int64_t n, int64_t k,
                               int32_t* codes, void* values, void* workspace,
                               size_t workspace_bytes,
                               cudaStream_t stream = nullptr) {
  return Run<EncodeReport>(
      "accumulate_encode", stream,
      [&](EncodeReport* r) {
        return AccumulateEncodeAsync(format, memory, gradient, n, k, codes,
                                     values, workspace, workspace_bytes, r,
                                     stream);
      },
      [&](const EncodeReport& r) { return EncodeOutcome(r, n, k, false); });
}

inline Status ScatterSub(FloatFormat format, void* variable, int64_t n,
                         const int32_t* indices, const void* updates,
                         int64_t u, const std::string& shape,
                         void* workspace, size_t workspace_bytes,
                         cudaStream_t stream = nullptr) {
  return Run<ScatterReport>(
      "scatter_sub", stream,
      [&](ScatterReport* r) {
        return ScatterSubAsync(format, variable, n, indices, updates, u,
                               workspace, workspace_bytes, r, stream);
      },
      [&](const ScatterReport& r) { return ScatterSubOutcome(r, n, shape); });
}

inline Status CheckFinite(FloatFormat format, const void* x, int64_t n,
                          const std::string& message, void* workspace,
                          size_t workspace_bytes,
                          cudaStream_t stream = nullptr) {
  return Run<FiniteReport>(
      "check_finite", stream,
      [&](FiniteReport* r) {
        return CheckFiniteAsync(format, x, n, workspace, workspace_bytes, r,
                                stream);
      },
      [&](const FiniteReport& r) {
        return CheckFiniteOutcome(r, n, message);
      });
}

inline Status PackSigns(const int32_t* codes, int64_t k, int64_t n,
                        int32_t* words, int64_t num_words, void* workspace,
                        size_t workspace_bytes,
                        cudaStream_t stream = nullptr) {
  return Run<PackReport>(
      "packed_signs_encode", stream,
      [&](PackReport* r) {
        return PackSignsAsync(codes, k, n, words, num_words, workspace,
                              workspace_bytes, r, stream);
      },
      [&](const PackReport& r) { return PackSignsOutcome(r, n); });
}

inline Status PackedVote(const int32_t* rows, int64_t m, int64_t w, int64_t n,
                         const float* weights, float* out, void* workspace,
                         size_t workspace_bytes,
                         cudaStream_t stream = nullptr) {
  return Run<PackedVoteReport>(
      "packed_signs_vote", stream,
      [&](PackedVoteReport* r) {
        return PackedVoteAsync(rows, m, w, n, weights, out, workspace,
                               workspace_bytes, r, stream);
      },
      [&](const PackedVoteReport& r) { return PackedVoteOutcome(r); });
}

}  // namespace sync
}  // namespace gpu
}  // namespace sparsesign

#endif  // TF_SPARSESIGN_CUDA_HARNESS_SYNC_CALLS_H_
