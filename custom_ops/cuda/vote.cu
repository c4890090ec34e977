// GPU majority vote: validate rows, tally, sign. Bit-identical to the CPU
// core: unweighted tallies are small integers (exact in any order, so one
// atomic scatter suffices); weighted tallies are float32 sums that depend
// on order, so each block owns an index range and adds the rows into it in
// row order (shared memory, no atomics: a valid row holds an index once).
//
// Launch sequence (one stream; nothing waits for it):
//   flags = 0, first_bad = ~0; ValidateKernel     per-row flags, first bad j
//   SummarizeKernel (one block)                    the report: weights, rows
//   unweighted: out = 0; ScatterKernel; SignTouchedKernel or SignAllKernel
//   weighted:   FillKernel, BoundsKernel           where each row enters
//               TallyKernel                        each index range
//   copy of the report to the caller's host memory
// The host then turns the report into the core's status (same texts).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "device_util.cuh"
#include "select_plan.h"
#include "sparse_sign_cuda.h"

namespace sparsesign {
namespace gpu {
namespace {

using u64 = unsigned long long;  // the type CUDA atomics take

constexpr uint32_t kRowInvalid = 1;
constexpr int kThreads = 256;
// Unweighted tallies are exact while |sum| < 2**24; more rows than that go
// through the row-ordered tally, which equals the CPU core by construction.
constexpr int64_t kMaxExactRows = int64_t{1} << 24;
// Outputs per block of the row-ordered tally (32 KB of shared memory).
constexpr int64_t kRange = 8192;
constexpr int kSummaryThreads = 1024;

// Grid: x over positions in a row, y over rows (strided past 65535).
__global__ void ValidateKernel(const int32_t* codes, int64_t m, int64_t k,
                               int64_t num_elements, uint32_t* flags,
                               uint32_t* first_bad) {
  for (int64_t r = blockIdx.y; r < m; r += gridDim.y) {
    const int32_t* row = codes + r * k;
    for (int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; j < k;
         j += int64_t{gridDim.x} * blockDim.x)
      if (plan::CodeBreaksRow(row, j, num_elements)) {
        atomicOr(&flags[r], kRowInvalid);
        atomicMin(&first_bad[r], static_cast<uint32_t>(j));  // k < 2**30
      }
  }
}

// One block: the lowest row with a non-finite weight, the invalid rows
// (count, lowest), and for the lowest its offending code and the
// non-padding code before it, so the host can write the core's message.
__global__ void __launch_bounds__(kSummaryThreads)
    SummarizeKernel(const int32_t* codes, int64_t m, int64_t k,
                    const float* weights, const uint32_t* flags,
                    const uint32_t* first_bad, VoteReport* report) {
  __shared__ u64 dropped;
  __shared__ u64 first_invalid;
  __shared__ u64 bad_weight_row;
  __shared__ u64 prev_pos;  // + 1; 0: none found yet
  if (threadIdx.x == 0) {
    dropped = 0;
    first_invalid = static_cast<u64>(m);
    bad_weight_row = static_cast<u64>(m);
    prev_pos = 0;
  }
  __syncthreads();
  for (int64_t r = threadIdx.x; r < m; r += blockDim.x) {
    if (weights && !isfinite(weights[r]))
      atomicMin(&bad_weight_row, static_cast<u64>(r));
    if (flags[r] & kRowInvalid) {
      atomicAdd(&dropped, u64{1});
      atomicMin(&first_invalid, static_cast<u64>(r));
    }
  }
  __syncthreads();
  const int64_t bad_row = static_cast<int64_t>(first_invalid);
  const int32_t* row = bad_row < m ? codes + bad_row * k : nullptr;
  const int64_t bad_pos = row ? static_cast<int64_t>(first_bad[bad_row]) : -1;
  // The nearest non-padding position before bad_pos, a block-wide walk back
  // over the padding (a padding run may be long).
  for (int64_t top = bad_pos; top > 0; top -= blockDim.x) {  // uniform
    const int64_t p = top - 1 - threadIdx.x;
    if (p >= 0 && row[p] != kPadCode)
      atomicMax(&prev_pos, static_cast<u64>(p + 1));
    __syncthreads();
    if (prev_pos != 0) break;  // uniform: read after the barrier
    __syncthreads();           // prev_pos is not written meanwhile
  }
  if (threadIdx.x == 0) {
    VoteReport out;
    out.dropped = static_cast<int64_t>(dropped);
    out.first_invalid_row = bad_row;
    out.bad_pos = bad_pos;
    out.prev_pos = static_cast<int64_t>(prev_pos) - 1;
    out.bad_weight_row = static_cast<int64_t>(bad_weight_row);
    out.bad_code = row ? row[bad_pos] : 0;
    out.prev_code = row && out.prev_pos >= 0 ? row[out.prev_pos] : 0;
    out.bad_weight = out.bad_weight_row < m ? weights[out.bad_weight_row] : 0;
    out.unused = 0;
    *report = out;
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

__global__ void FillKernel(int32_t* p, int64_t count, int32_t value) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x)
    p[i] = value;
}

// start[r][b] (b = 0..ranges) = position in row r of the first non-padding
// code whose index is at or above b * kRange, k if none (pre-filled): the
// codes of range b are at positions [start[r][b], start[r][b + 1]), padding
// between them included. Each code sets the entries of the ranges between
// its predecessor's and its own, so every entry is written once.
__global__ void BoundsKernel(const int32_t* codes, int64_t m, int64_t k,
                             int64_t ranges, const uint32_t* flags,
                             int32_t* start) {
  for (int64_t r = blockIdx.y; r < m; r += gridDim.y) {
    if (flags[r] & kRowInvalid) continue;  // stays all k: abstains
    const int32_t* row = codes + r * k;
    int32_t* own = start + r * (ranges + 1);
    for (int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; j < k;
         j += int64_t{gridDim.x} * blockDim.x) {
      const int32_t code = row[j];
      if (code == kPadCode) continue;
      int64_t before = -1;  // range of the previous non-padding code
      for (int64_t p = j - 1; p >= 0; --p)
        if (row[p] != kPadCode) {
          before = (row[p] >> 1) / kRange;
          break;
        }
      const int64_t range = (code >> 1) / kRange;
      for (int64_t b = before + 1; b <= range; ++b)
        own[b] = static_cast<int32_t>(j);
    }
  }
}

// Block b owns outputs [b * kRange, (b + 1) * kRange): it adds every valid
// row's votes there in row order, as the core does (out[i] += +-w, float32,
// denormals flushed), then writes the signs. Rows with weight null add 1.
__global__ void __launch_bounds__(kThreads)
    TallyKernel(const int32_t* codes, int64_t m, int64_t k,
                int64_t num_elements, int64_t ranges, const float* weights,
                const uint32_t* flags, const int32_t* start, float* out) {
  __shared__ float tile[kRange];
  const float tiny = 1.17549435e-38f;  // denormals count as zero (core)
  for (int64_t b = blockIdx.x; b < ranges; b += gridDim.x) {
    const int64_t lo = b * kRange;
    const int64_t width =
        num_elements - lo < kRange ? num_elements - lo : kRange;
    for (int64_t i = threadIdx.x; i < width; i += blockDim.x) tile[i] = 0.0f;
    __syncthreads();
    for (int64_t r = 0; r < m; ++r) {
      if (flags[r] & kRowInvalid) continue;  // uniform
      float w = weights ? weights[r] : 1.0f;
      if (fabsf(w) < tiny) w = 0.0f;
      const int32_t* row = codes + r * k;
      const int32_t* own = start + r * (ranges + 1);
      const int64_t end = own[b + 1];
      for (int64_t j = own[b] + threadIdx.x; j < end; j += blockDim.x) {
        const int32_t code = row[j];
        if (code == kPadCode) continue;
        float* v = &tile[(code >> 1) - lo];
        const float sum = *v + ((code & 1) ? -w : w);
        *v = fabsf(sum) < tiny ? 0.0f : sum;
      }
      __syncthreads();  // row r is in before row r + 1 starts
    }
    for (int64_t i = threadIdx.x; i < width; i += blockDim.x)
      out[lo + i] = plan::SignOf(tile[i]);
    __syncthreads();  // the tile is reused for the next range
  }
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

// Workspace: flags | first bad position | report | start table.
struct VoteLayout {
  size_t flags = 0, first_bad = 0, report = 0, start = 0, total = 0;
  int64_t ranges = 0;
  bool ordered = false;  // the row-ordered tally (and its table)
};

VoteLayout VoteLayoutFor(int64_t m, int64_t num_elements, bool weighted) {
  VoteLayout l;
  const size_t rows = static_cast<size_t>(std::max<int64_t>(m, 1));
  l.ordered = weighted || m > kMaxExactRows;
  l.ranges = (std::max<int64_t>(num_elements, 0) + kRange - 1) / kRange;
  l.first_bad = AlignUp(sizeof(uint32_t) * rows);
  l.report = l.first_bad + AlignUp(sizeof(uint32_t) * rows);
  l.start = l.report + AlignUp(sizeof(VoteReport));
  l.total = l.start + (l.ordered ? AlignUp(sizeof(int32_t) * rows *
                                           static_cast<size_t>(l.ranges + 1))
                                 : 0);
  return l;
}

// The core's ValidateRow text for the first offending code of a row.
std::string RowProblem(const VoteReport& r, int64_t num_elements) {
  const int32_t code = r.bad_code;
  const std::string at = "code " + std::to_string(code) + " at position " +
                         std::to_string(r.bad_pos);
  if (code < kPadCode)
    return at + " is negative and not the padding code -1";
  const int64_t idx = code >> 1;
  if (idx >= num_elements)
    return at + " decodes to index " + std::to_string(idx) +
           ", outside [0, " + std::to_string(num_elements) + ")";
  return at + " decodes to index " + std::to_string(idx) +
         ", not above index " + std::to_string(r.prev_code >> 1) +
         " at position " + std::to_string(r.prev_pos) +
         " (indices in a row must strictly increase)";
}

}  // namespace

size_t VoteWorkspaceBytes(int64_t m, int64_t num_elements, bool weighted) {
  return VoteLayoutFor(m, num_elements, weighted).total;
}

Status MajorityVoteAsync(const int32_t* codes, int64_t m, int64_t k,
                         int64_t num_elements, const float* weights,
                         float* out, void* workspace, size_t workspace_bytes,
                         VoteReport* report, cudaStream_t stream) {
  // Same checks and texts as the CPU core, in the same order.
  if (m < 0 || k < 0)
    return Status::Invalid("majority_vote: codes must have shape [M, k] with "
                           "M, k >= 0, got [" + std::to_string(m) + ", " +
                           std::to_string(k) + "]");
  if (num_elements < 0 || num_elements > kMaxElements)
    return Status::Invalid(
        "majority_vote: num_elements must be in [0, 2**30], got " +
        std::to_string(num_elements));
  const VoteLayout l = VoteLayoutFor(m, num_elements, weights != nullptr);
  const Status ws_ok = CheckWorkspace("majority_vote", workspace,
                                      workspace_bytes, l.total);
  if (!ws_ok.ok) return ws_ok;
  char* ws = static_cast<char*>(workspace);
  uint32_t* flags = reinterpret_cast<uint32_t*>(ws + l.flags);
  uint32_t* first_bad = reinterpret_cast<uint32_t*>(ws + l.first_bad);
  VoteReport* dev_report = reinterpret_cast<VoteReport*>(ws + l.report);
  int32_t* start = reinterpret_cast<int32_t*>(ws + l.start);
  *report = VoteReport{0, m, -1, -1, m, 0, 0, 0.0f, 0};

  cudaGetLastError();  // launch errors below are ours alone
  const int sms = MultiprocessorCount();
  const bool any_codes = m > 0 && k > 0;
  const dim3 grid = RowGrid(m, k, sms);
  if (m > 0) {
    cudaMemsetAsync(flags, 0, sizeof(uint32_t) * m, stream);
    cudaMemsetAsync(first_bad, 0xFF, sizeof(uint32_t) * m, stream);
    if (any_codes)
      ValidateKernel<<<grid, kThreads, 0, stream>>>(codes, m, k, num_elements,
                                                    flags, first_bad);
    SummarizeKernel<<<1, kSummaryThreads, 0, stream>>>(
        codes, m, k, weights, flags, first_bad, dev_report);
  }
  if (any_codes && l.ordered && num_elements > 0) {
    const int64_t entries = m * (l.ranges + 1);
    FillKernel<<<FlatGrid(entries, sms), kThreads, 0, stream>>>(
        start, entries, static_cast<int32_t>(k));
    BoundsKernel<<<grid, kThreads, 0, stream>>>(codes, m, k, l.ranges, flags,
                                                start);
    const unsigned tally_grid = static_cast<unsigned>(
        std::min<int64_t>(l.ranges, int64_t{16} * sms));
    TallyKernel<<<tally_grid, kThreads, 0, stream>>>(
        codes, m, k, num_elements, l.ranges, weights, flags, start, out);
  } else if (num_elements > 0) {
    cudaMemsetAsync(out, 0, sizeof(float) * num_elements, stream);
    if (any_codes) {
      ScatterKernel<<<grid, kThreads, 0, stream>>>(codes, m, k, flags, out);
      if (m * k < num_elements) {
        SignTouchedKernel<<<grid, kThreads, 0, stream>>>(codes, m, k, flags,
                                                         out);
      } else {
        SignAllKernel<<<FlatGrid(num_elements, sms), kThreads, 0, stream>>>(
            out, num_elements);
      }
    }
  }
  if (m > 0) {
    const cudaError_t copy =
        cudaMemcpyAsync(report, dev_report, sizeof(VoteReport),
                        cudaMemcpyDeviceToHost, stream);
    if (copy != cudaSuccess)
      return Status::Internal(CudaFailure("majority_vote", copy));
  }
  return LaunchStatus("majority_vote");
}

Status MajorityVoteOutcome(const VoteReport& report, int64_t m,
                           int64_t num_elements, bool drop,
                           int64_t* num_dropped) {
  if (num_dropped) *num_dropped = 0;
  if (report.bad_weight_row < m)
    return Status::Invalid("majority_vote: weights must be finite, got " +
                           std::to_string(report.bad_weight) + " for row " +
                           std::to_string(report.bad_weight_row));
  if (report.first_invalid_row < m && !drop)
    return Status::Invalid("majority_vote: row " +
                           std::to_string(report.first_invalid_row) + " (of " +
                           std::to_string(m) + ") is invalid: " +
                           RowProblem(report, num_elements));
  if (num_dropped && drop) *num_dropped = report.dropped;
  return Status::Ok();
}

}  // namespace gpu
}  // namespace sparsesign
