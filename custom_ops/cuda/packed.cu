// GPU packed signs (see step_cuda.h; format in ../core/packed.h), bit-
// identical to the CPU core (../core/packed.cc), errors included.
//
// Encode, one stream, nothing waits:
//   words = 0; PackInitKernel
//   PackKernel         one thread per code: adds its digit to its word with
//                      an atomic add (digits of distinct coordinates never
//                      carry), and flags a bad code or a digit already set
//   PackResolveKernel  one thread, only when something was flagged: replays
//                      the CPU loop from zeroed words to find the position
//                      and kind of the error the CPU reports (error path
//                      only; on error the words are unspecified, as there)
//   copy of the report
// Vote: VoteInitKernel, WeightCheckKernel (the lowest non-finite weight),
// PackedVoteKernel (one thread per word: its 20 coordinates, every row in
// row order, float32 sums flushed as the core does, or exact int counts
// when unweighted), copy of the report.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include "../core/packed.h"
#include "device_util.cuh"
#include "step_cuda.h"

namespace sparsesign {
namespace gpu {
namespace {

using u64 = AtomicU64;
constexpr u64 kNone = kNoIndex;
constexpr int kThreads = 256;
constexpr uint32_t kFlagged = 1;
// The encode's workspace: its report, then the "something is wrong" flag.
constexpr size_t kFlagOffset = 64;
static_assert(sizeof(PackReport) <= kFlagOffset, "report fits before flag");

__device__ __forceinline__ uint32_t Pow3(int64_t d) {
  return d == 0 ? 1u : d == 1 ? 3u : d == 2 ? 9u : d == 3 ? 27u : 81u;
}

// Coordinate idx's digit (0, 1 or 2) in its `word`; what adding code's
// digit adds to the word.
__device__ __forceinline__ uint32_t DigitIn(uint32_t word, int64_t idx) {
  const int64_t r = idx % kPackedDigitsPerWord;
  const uint32_t byte = (word >> (8 * (r / kPackedDigitsPerByte))) & 0xFFu;
  return (byte / Pow3(r % kPackedDigitsPerByte)) % 3u;
}
__device__ __forceinline__ uint32_t DigitAdd(int32_t code, int64_t idx) {
  const int64_t r = idx % kPackedDigitsPerWord;
  return ((1u + static_cast<uint32_t>(code & 1)) *
          Pow3(r % kPackedDigitsPerByte))
         << (8 * (r / kPackedDigitsPerByte));
}

// ------------------------------------------------------------------ encode

__global__ void PackInitKernel(PackReport* r, uint32_t* flag) {
  r->position = 0;
  r->code = 0;
  r->error = 0;
  *flag = 0;
}

__global__ void PackKernel(const int32_t* codes, int64_t k, int64_t n,
                           uint32_t* words, uint32_t* flag) {
  for (int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; j < k;
       j += int64_t{gridDim.x} * blockDim.x) {
    const int32_t code = codes[j];
    if (code == kPadCode) continue;
    const int64_t idx = code >> 1;
    if (code < kPadCode || idx >= n) {
      atomicOr(flag, kFlagged);
      continue;
    }
    const uint32_t old = atomicAdd(&words[idx / kPackedDigitsPerWord],
                                   DigitAdd(code, idx));
    if (DigitIn(old, idx) != 0) atomicOr(flag, kFlagged);
  }
}

__global__ void PackResolveKernel(const int32_t* codes, int64_t k, int64_t n,
                                  uint32_t* words, int64_t num_words,
                                  const uint32_t* flag, PackReport* r) {
  if (*flag == 0) return;
  for (int64_t i = 0; i < num_words; ++i) words[i] = 0;
  for (int64_t j = 0; j < k; ++j) {  // PackSigns' loop
    const int32_t code = codes[j];
    if (code == kPadCode) continue;
    const int64_t idx = code >> 1;
    uint32_t error = 0;
    if (code < kPadCode || idx >= n) {
      error = 1;
    } else if (DigitIn(words[idx / kPackedDigitsPerWord], idx) != 0) {
      error = 2;
    } else {
      words[idx / kPackedDigitsPerWord] += DigitAdd(code, idx);
      continue;
    }
    r->position = static_cast<uint64_t>(j);
    r->code = code;
    r->error = error;
    return;
  }
}

// -------------------------------------------------------------------- vote

constexpr float kTiny = 1.17549435e-38f;  // as the core's vote
__device__ __forceinline__ float FlushVote(float v) {
  return fabsf(v) < kTiny ? 0.0f : v;
}

__global__ void VoteInitKernel(PackedVoteReport* r) {
  r->bad_weight_row = kNone;
  r->bad_weight = 0.0f;
  r->unused = 0;
}

__global__ void WeightCheckKernel(const float* weights, int64_t m,
                                  PackedVoteReport* r) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < m;
       i += int64_t{gridDim.x} * blockDim.x) {
    if ((__float_as_uint(weights[i]) & 0x7F800000u) == 0x7F800000u)
      atomicMin(reinterpret_cast<u64*>(&r->bad_weight_row),
                static_cast<u64>(i));
  }
}

__global__ void WeightValueKernel(const float* weights, PackedVoteReport* r) {
  if (r->bad_weight_row != kNone) r->bad_weight = weights[r->bad_weight_row];
}

// One thread per word: kWeighted sums float32 (rows in order), else counts.
template <bool kWeighted>
__global__ void __launch_bounds__(kThreads)
    PackedVoteKernel(const int32_t* __restrict__ rows, int64_t m, int64_t w,
                     int64_t n, const float* __restrict__ weights,
                     float* __restrict__ out, bool out_vec_ok,
                     const PackedVoteReport* r) {
  if (kWeighted && r->bad_weight_row != kNone) return;
  using Acc = typename std::conditional<kWeighted, float, int32_t>::type;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < w;
       i += int64_t{gridDim.x} * blockDim.x) {
    Acc acc[kPackedDigitsPerWord];
#pragma unroll
    for (int c = 0; c < kPackedDigitsPerWord; ++c) acc[c] = Acc(0);
    for (int64_t row = 0; row < m; ++row) {
      const uint32_t word = static_cast<uint32_t>(__ldg(rows + row * w + i));
      if (word == 0u) continue;  // twenty abstentions
      const float wr = kWeighted ? FlushVote(__ldg(weights + row)) : 0.0f;
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        uint32_t byte = (word >> (8 * b)) & 0xFFu;
        if (byte > static_cast<uint32_t>(kPackedMaxByte)) continue;
#pragma unroll
        for (int j = 0; j < kPackedDigitsPerByte; ++j) {
          const uint32_t d = byte % 3u;
          byte /= 3u;
          if (d == 0) continue;
          Acc& a = acc[b * kPackedDigitsPerByte + j];
          if (kWeighted) {
            a = FlushVote(a + (d == 1 ? wr : -wr));
          } else {
            a += d == 1 ? 1 : -1;
          }
        }
      }
    }
    const int64_t first = i * kPackedDigitsPerWord;
    float sign[kPackedDigitsPerWord];
#pragma unroll
    for (int c = 0; c < kPackedDigitsPerWord; ++c)
      sign[c] = plan::SignOf(static_cast<float>(acc[c]));
    if (out_vec_ok && first + kPackedDigitsPerWord <= n) {
      uint4* v = reinterpret_cast<uint4*>(out + first);  // 80 bytes
#pragma unroll
      for (int q = 0; q < kPackedDigitsPerWord / 4; ++q) {
        uint4 four;
        memcpy(&four, &sign[4 * q], 16);
        v[q] = four;
      }
    } else {
#pragma unroll
      for (int c = 0; c < kPackedDigitsPerWord; ++c)
        if (first + c < n) out[first + c] = sign[c];
    }
  }
}

}  // namespace

Status PackSignsAsync(const int32_t* codes, int64_t k, int64_t n,
                      int32_t* words, int64_t num_words, void* workspace,
                      size_t workspace_bytes, PackReport* report,
                      cudaStream_t stream) {
  constexpr const char* kOp = "packed_signs_encode";
  *report = PackReport{0, 0, 0};
  const Status size = CheckPackedSize(kOp, n, num_words);
  if (!size.ok) return size;
  if (k < 0)
    return Status::Invalid("packed_signs_encode: k must be >= 0, got " +
                           std::to_string(k));
  const Status ws = CheckWorkspace(kOp, workspace, workspace_bytes,
                                   StepWorkspaceBytes());
  if (!ws.ok) return ws;
  auto* r = static_cast<PackReport*>(workspace);
  auto* flag = reinterpret_cast<uint32_t*>(static_cast<char*>(workspace) +
                                           kFlagOffset);
  auto* out = reinterpret_cast<uint32_t*>(words);
  cudaGetLastError();  // launch errors below are ours alone
  if (num_words > 0)
    cudaMemsetAsync(out, 0, sizeof(uint32_t) * num_words, stream);
  PackInitKernel<<<1, 1, 0, stream>>>(r, flag);
  if (k > 0) {
    PackKernel<<<GridFor(k, kThreads), kThreads, 0, stream>>>(codes, k, n,
                                                              out, flag);
    PackResolveKernel<<<1, 1, 0, stream>>>(codes, k, n, out, num_words, flag,
                                           r);
  }
  return CopyReport(kOp, report, r, stream);
}

Status PackSignsOutcome(const PackReport& report, int64_t n) {
  if (report.error == 0) return Status::Ok();
  return PackedCodeError(report.code, static_cast<int64_t>(report.position),
                         n, report.error == 2);
}

Status PackedVoteAsync(const int32_t* rows, int64_t m, int64_t w, int64_t n,
                       const float* weights, float* out, void* workspace,
                       size_t workspace_bytes, PackedVoteReport* report,
                       cudaStream_t stream) {
  constexpr const char* kOp = "packed_signs_vote";
  *report = PackedVoteReport{kNone, 0.0f, 0};
  const Status size = CheckPackedSize(kOp, n, w);
  if (!size.ok) return size;
  if (m < 0)
    return Status::Invalid("packed_signs_vote: rows must have shape [M, W] "
                           "with M >= 0, got M = " + std::to_string(m));
  const Status ws = CheckWorkspace(kOp, workspace, workspace_bytes,
                                   StepWorkspaceBytes());
  if (!ws.ok) return ws;
  auto* r = static_cast<PackedVoteReport*>(workspace);
  cudaGetLastError();
  VoteInitKernel<<<1, 1, 0, stream>>>(r);
  if (weights != nullptr && m > 0) {
    WeightCheckKernel<<<GridFor(m, kThreads), kThreads, 0, stream>>>(
        weights, m, r);
    WeightValueKernel<<<1, 1, 0, stream>>>(weights, r);
  }
  if (w > 0) {
    const bool vec = Aligned16(out);
    const unsigned grid = GridFor(w, kThreads);
    if (weights != nullptr) {
      PackedVoteKernel<true><<<grid, kThreads, 0, stream>>>(
          rows, m, w, n, weights, out, vec, r);
    } else {
      PackedVoteKernel<false><<<grid, kThreads, 0, stream>>>(
          rows, m, w, n, nullptr, out, vec, r);
    }
  }
  return CopyReport(kOp, report, r, stream);
}

Status PackedVoteOutcome(const PackedVoteReport& report) {
  if (report.bad_weight_row == kNone) return Status::Ok();
  return PackedWeightError(report.bad_weight,
                           static_cast<int64_t>(report.bad_weight_row));
}

}  // namespace gpu
}  // namespace sparsesign
