// GPU majority vote: validate rows, tally, sign. Bit-identical to the CPU
// core: unweighted tallies are small integers (exact in any order, so one
// atomic scatter suffices); weighted tallies are float32 sums that depend on
// order, so each row is added by its own launch, in row order. Valid rows
// hold unique indices, so a row's adds need no atomics.
//
// Launch sequence (one stream, one host sync at the end):
//   flags = 0; WeightCheckKernel; ValidateKernel      per-row flags
//   out = 0; ScatterKernel (or RowAddKernel per row)   tally
//   SignKernel over the codes (or over the whole output when denser)
// The host then reads the flags and, for an error, re-checks the offending
// row on the CPU (core ValidateRow) so the message matches exactly.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "device_util.cuh"
#include "select_plan.h"
#include "sparse_sign_cuda.h"

namespace sparsesign {
namespace gpu {
namespace {

constexpr uint32_t kRowInvalid = 1;
constexpr uint32_t kBadWeight = 2;
constexpr int kThreads = 256;
// Unweighted tallies are exact while |sum| < 2**24; more rows than that go
// through the row-ordered path, which equals the CPU core by construction.
constexpr int64_t kMaxExactRows = int64_t{1} << 24;

__global__ void WeightCheckKernel(const float* weights, int64_t m,
                                  uint32_t* flags) {
  for (int64_t r = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; r < m;
       r += int64_t{gridDim.x} * blockDim.x)
    if (!isfinite(weights[r])) flags[r] |= kBadWeight;
}

// Grid: x over positions in a row, y over rows (strided past 65535).
__global__ void ValidateKernel(const int32_t* codes, int64_t m, int64_t k,
                               int64_t num_elements, uint32_t* flags) {
  for (int64_t r = blockIdx.y; r < m; r += gridDim.y) {
    const int32_t* row = codes + r * k;
    for (int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; j < k;
         j += int64_t{gridDim.x} * blockDim.x)
      if (plan::CodeBreaksRow(row, j, num_elements))
        atomicOr(&flags[r], kRowInvalid);
  }
}

__global__ void ScatterKernel(const int32_t* codes, int64_t m, int64_t k,
                              const uint32_t* flags, float* out) {
  for (int64_t r = blockIdx.y; r < m; r += gridDim.y) {
    if (flags[r] & kRowInvalid) continue;
    const int32_t* row = codes + r * k;
    for (int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; j < k;
         j += int64_t{gridDim.x} * blockDim.x) {
      const int32_t code = row[j];
      if (code < 0) continue;  // padding (valid rows have no other negatives)
      atomicAdd(&out[code >> 1], (code & 1) ? -1.0f : 1.0f);
    }
  }
}

// Adds one row (weight w, or 1 without weights) exactly as the CPU core:
// out[idx] += negative ? -w : w.
__global__ void RowAddKernel(const int32_t* row, int64_t k, int64_t r,
                             const float* weights, const uint32_t* flags,
                             float* out) {
  if (flags[r] & kRowInvalid) return;
  // Denormals count as zero (weights and partial sums), as in the core.
  const float tiny = 1.17549435e-38f;
  float w = weights ? weights[r] : 1.0f;
  if (fabsf(w) < tiny) w = 0.0f;
  for (int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; j < k;
       j += int64_t{gridDim.x} * blockDim.x) {
    const int32_t code = row[j];
    if (code < 0) continue;
    const float v = out[code >> 1] + ((code & 1) ? -w : w);
    out[code >> 1] = fabsf(v) < tiny ? 0.0f : v;
  }
}

// sign() of every touched entry. Several rows may touch one entry: each
// thread reads either the tally or its sign, and sign(sign(v)) = sign(v).
__global__ void SignTouchedKernel(const int32_t* codes, int64_t m, int64_t k,
                                  const uint32_t* flags, float* out) {
  for (int64_t r = blockIdx.y; r < m; r += gridDim.y) {
    if (flags[r] & kRowInvalid) continue;
    const int32_t* row = codes + r * k;
    for (int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; j < k;
         j += int64_t{gridDim.x} * blockDim.x) {
      const int32_t code = row[j];
      if (code < 0) continue;
      float* v = &out[code >> 1];
      *v = plan::SignOf(*v);
    }
  }
}

__global__ void SignAllKernel(float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    out[i] = plan::SignOf(out[i]);
}

dim3 RowGrid(int64_t m, int64_t k, int sms) {
  const int64_t x =
      std::max<int64_t>(1, std::min<int64_t>((k + kThreads - 1) / kThreads,
                                             int64_t{4} * sms));
  const int64_t y = std::max<int64_t>(1, std::min<int64_t>(m, 65535));
  return dim3(static_cast<unsigned>(x), static_cast<unsigned>(y));
}

unsigned FlatGrid(int64_t count, int sms) {
  return static_cast<unsigned>(std::max<int64_t>(
      1, std::min<int64_t>((count + kThreads - 1) / kThreads,
                           int64_t{8} * sms)));
}

// Small reads for error messages, on the caller's stream.
cudaError_t CopyToHost(void* dst, const void* src, size_t bytes,
                       cudaStream_t stream) {
  const cudaError_t err =
      cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream);
  return err != cudaSuccess ? err : cudaStreamSynchronize(stream);
}

}  // namespace

size_t VoteWorkspaceBytes(int64_t m) {
  return AlignUp(sizeof(uint32_t) * std::max<int64_t>(m, 1));
}

Status MajorityVote(const int32_t* codes, int64_t m, int64_t k,
                    int64_t num_elements, const float* weights, bool drop,
                    float* out, int64_t* num_dropped, void* workspace,
                    size_t workspace_bytes, cudaStream_t stream) {
  // Same checks and texts as the CPU core, in the same order.
  if (m < 0 || k < 0)
    return Status::Invalid("majority_vote: codes must have shape [M, k] with "
                           "M, k >= 0, got [" + std::to_string(m) + ", " +
                           std::to_string(k) + "]");
  if (num_elements < 0 || num_elements > kMaxElements)
    return Status::Invalid(
        "majority_vote: num_elements must be in [0, 2**30], got " +
        std::to_string(num_elements));
  if (workspace_bytes < VoteWorkspaceBytes(m))
    return Status::Invalid("majority_vote: GPU workspace too small");
  if (num_dropped) *num_dropped = 0;

  uint32_t* flags = static_cast<uint32_t*>(workspace);
  const int sms = MultiprocessorCount();
  const bool any_codes = m > 0 && k > 0;
  if (m > 0) cudaMemsetAsync(flags, 0, sizeof(uint32_t) * m, stream);
  if (weights && m > 0)
    WeightCheckKernel<<<FlatGrid(m, sms), kThreads, 0, stream>>>(weights, m,
                                                                 flags);
  const dim3 grid = RowGrid(m, k, sms);
  if (any_codes)
    ValidateKernel<<<grid, kThreads, 0, stream>>>(codes, m, k, num_elements,
                                                  flags);
  if (num_elements > 0)
    cudaMemsetAsync(out, 0, sizeof(float) * num_elements, stream);
  if (any_codes) {
    if (weights || m > kMaxExactRows) {
      const dim3 row_grid = RowGrid(1, k, sms);
      for (int64_t r = 0; r < m; ++r)
        RowAddKernel<<<row_grid.x, kThreads, 0, stream>>>(
            codes + r * k, k, r, weights, flags, out);
    } else {
      ScatterKernel<<<grid, kThreads, 0, stream>>>(codes, m, k, flags, out);
    }
    if (m * k < num_elements) {
      SignTouchedKernel<<<grid, kThreads, 0, stream>>>(codes, m, k, flags,
                                                       out);
    } else {
      SignAllKernel<<<FlatGrid(num_elements, sms), kThreads, 0, stream>>>(
          out, num_elements);
    }
  }
  std::vector<uint32_t> host_flags(static_cast<size_t>(m));
  if (m > 0)
    cudaMemcpyAsync(host_flags.data(), flags, sizeof(uint32_t) * m,
                    cudaMemcpyDeviceToHost, stream);
  cudaError_t err = cudaStreamSynchronize(stream);
  if (err == cudaSuccess) err = cudaGetLastError();
  if (err != cudaSuccess)
    return Status::Invalid(CudaFailure("majority_vote", err));

  for (int64_t r = 0; r < m; ++r) {
    if (!(host_flags[r] & kBadWeight)) continue;
    float w = 0.0f;
    err = CopyToHost(&w, weights + r, sizeof(float), stream);
    if (err != cudaSuccess)
      return Status::Invalid(CudaFailure("majority_vote", err));
    return Status::Invalid("majority_vote: weights must be finite, got " +
                           std::to_string(w) + " for row " +
                           std::to_string(r));
  }
  int64_t dropped = 0;
  for (int64_t r = 0; r < m; ++r) {
    if (!(host_flags[r] & kRowInvalid)) continue;
    if (drop) {
      ++dropped;
      continue;
    }
    // Re-check the first invalid row on the host for the exact message.
    std::vector<int32_t> row(static_cast<size_t>(k));
    err = CopyToHost(row.data(), codes + r * k, sizeof(int32_t) * k, stream);
    if (err != cudaSuccess)
      return Status::Invalid(CudaFailure("majority_vote", err));
    std::string why = ValidateRow(row.data(), k, num_elements);
    if (why.empty())
      why = "internal error (GPU flagged a row the CPU check accepts)";
    return Status::Invalid("majority_vote: row " + std::to_string(r) +
                           " (of " + std::to_string(m) +
                           ") is invalid: " + why);
  }
  if (num_dropped) *num_dropped = dropped;
  return Status::Ok();
}

}  // namespace gpu
}  // namespace sparsesign
