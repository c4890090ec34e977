// GPU kernels of the step's sparse SGD write and finiteness check (see
// step_cuda.h), bit-identical to the CPU kernels in ../tf/step_kernels.cc.
//
// scatter_sub, one stream, nothing waits:
//   ScatterInitKernel     report: no bad index, ordered
//   ScatterCheckKernel    every index: range (lowest bad position) and order
//   ScatterWriteKernel    strictly ascending and all in range: one thread
//                         per update (distinct entries, no atomics)
//   ScatterSerialKernel   one thread: the bad index's value for the message,
//                         or, for any other order, every update in order
//   copy of the report
// check_finite: FiniteInitKernel, FiniteCountKernel (one read of x: count
// and lowest index per block, one atomic each), FiniteKindKernel (what the
// first one is), copy of the report.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "../core/step_errors.h"
#include "device_util.cuh"
#include "float_ops.h"
#include "step_cuda.h"

namespace sparsesign {
namespace gpu {
namespace {

using u64 = AtomicU64;
constexpr u64 kNone = kNoIndex;
constexpr int kThreads = 256;

template <typename T>
__device__ __forceinline__ u64* AsU64(T* p) {
  static_assert(sizeof(T) == 8, "64-bit field");
  return reinterpret_cast<u64*>(p);
}

// ---------------------------------------------------------------- scatter

__global__ void ScatterInitKernel(ScatterReport* r) {
  r->bad_position = kNone;
  r->bad_index = 0;
  r->unordered = 0;
  r->unused = 0;
}

__global__ void ScatterCheckKernel(const int32_t* indices, int64_t u,
                                   int64_t n, ScatterReport* r) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < u;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int32_t index = indices[i];
    if (index < 0 || index >= n)
      atomicMin(AsU64(&r->bad_position), static_cast<u64>(i));
    if (i > 0 && index <= indices[i - 1]) atomicOr(&r->unordered, 1u);
  }
}

template <typename K>
__global__ void ScatterWriteKernel(typename K::Bits* x,
                                   const int32_t* indices,
                                   const typename K::Bits* updates, int64_t u,
                                   const ScatterReport* r) {
  if (r->bad_position != kNone || r->unordered) return;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < u;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int32_t index = indices[i];
    x[index] = fops::Arith<K>::Sub(x[index], updates[i]);
  }
}

template <typename K>
__global__ void ScatterSerialKernel(typename K::Bits* x,
                                    const int32_t* indices,
                                    const typename K::Bits* updates,
                                    int64_t u, ScatterReport* r) {
  if (r->bad_position != kNone) {
    r->bad_index = indices[r->bad_position];
    return;
  }
  if (!r->unordered) return;
  for (int64_t i = 0; i < u; ++i)  // the CPU kernel's loop, as it runs
    x[indices[i]] = fops::Arith<K>::Sub(x[indices[i]], updates[i]);
}

// ----------------------------------------------------------------- finite

__global__ void FiniteInitKernel(FiniteReport* r) {
  r->bad = 0;
  r->first = kNone;
  r->kind = 0;
  r->unused = 0;
}

// Tiles of 64 bytes per thread (16-byte loads), grid-stride over tiles.
template <typename K>
__global__ void __launch_bounds__(kTileThreads)
    FiniteCountKernel(const typename K::Bits* __restrict__ x, int64_t n,
                      bool vec_ok, FiniteReport* r) {
  using Bits = typename K::Bits;
  using Shape = TileShape<Bits>;
  __shared__ u64 block_bad;
  __shared__ u64 block_first;
  if (threadIdx.x == 0) {
    block_bad = 0;
    block_first = kNone;
  }
  __syncthreads();
  uint32_t bad = 0;
  u64 first = kNone;
  const int64_t tiles = (n + Shape::kSize - 1) / Shape::kSize;
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int64_t at = tile * Shape::kSize +
                       int64_t{threadIdx.x} * Shape::kItems;
    Bits items[Shape::kItems];
    LoadItems(x, n, at, vec_ok, items);  // past n: 0, finite
#pragma unroll
    for (int j = 0; j < Shape::kItems; ++j) {
      const bool not_finite = fops::NotFinite<K>(items[j]);
      bad += not_finite;
      if (not_finite && first == kNone) first = static_cast<u64>(at + j);
    }
  }
  if (bad) {
    atomicAdd(&block_bad, u64{bad});
    atomicMin(&block_first, first);
  }
  __syncthreads();
  if (threadIdx.x == 0 && block_bad) {
    atomicAdd(AsU64(&r->bad), block_bad);
    atomicMin(AsU64(&r->first), block_first);
  }
}

template <typename K>
__global__ void FiniteKindKernel(const typename K::Bits* x, FiniteReport* r) {
  if (r->bad == 0) return;
  const typename K::Bits bits = x[r->first];
  const bool nan = (bits & K::kMagMask) > K::kInfKey;
  const bool negative = (bits >> (K::kWidth - 1)) != 0;
  r->kind = nan ? 0u : negative ? 2u : 1u;
}

}  // namespace

size_t StepWorkspaceBytes() { return 256; }

Status ScatterSubAsync(FloatFormat format, void* variable, int64_t n,
                       const int32_t* indices, const void* updates, int64_t u,
                       void* workspace, size_t workspace_bytes,
                       ScatterReport* report, cudaStream_t stream) {
  constexpr const char* kOp = "scatter_sub";
  *report = ScatterReport{kNone, 0, 0, 0};
  if (n < 0 || u < 0)
    return Status::Invalid("scatter_sub: sizes must be >= 0, got n = " +
                           std::to_string(n) + " and u = " +
                           std::to_string(u));
  if (u == 0) return Status::Ok();
  const Status ws = CheckWorkspace(kOp, workspace, workspace_bytes,
                                   StepWorkspaceBytes());
  if (!ws.ok) return ws;
  auto* r = static_cast<ScatterReport*>(workspace);
  cudaGetLastError();  // launch errors below are ours alone
  return WithKeys(format, kOp, [&](auto keys) {
    using K = decltype(keys);
    using Bits = typename K::Bits;
    auto* x = static_cast<Bits*>(variable);
    auto* step = static_cast<const Bits*>(updates);
    const unsigned grid = GridFor(u, kThreads);
    ScatterInitKernel<<<1, 1, 0, stream>>>(r);
    ScatterCheckKernel<<<grid, kThreads, 0, stream>>>(indices, u, n, r);
    ScatterWriteKernel<K><<<grid, kThreads, 0, stream>>>(x, indices, step, u,
                                                         r);
    ScatterSerialKernel<K><<<1, 1, 0, stream>>>(x, indices, step, u, r);
    return CopyReport(kOp, report, r, stream);
  });
}

Status ScatterSubOutcome(const ScatterReport& report, int64_t n,
                         const std::string& shape) {
  if (report.bad_position == kNone) return Status::Ok();
  return Status::Invalid(ScatterIndexError(
      static_cast<int64_t>(report.bad_position), report.bad_index, n, shape));
}

Status CheckFiniteAsync(FloatFormat format, const void* x, int64_t n,
                        void* workspace, size_t workspace_bytes,
                        FiniteReport* report, cudaStream_t stream) {
  constexpr const char* kOp = "check_finite";
  *report = FiniteReport{0, kNone, 0, 0};
  if (n < 0)
    return Status::Invalid("check_finite: n must be >= 0, got " +
                           std::to_string(n));
  if (n == 0) return Status::Ok();
  const Status ws = CheckWorkspace(kOp, workspace, workspace_bytes,
                                   StepWorkspaceBytes());
  if (!ws.ok) return ws;
  auto* r = static_cast<FiniteReport*>(workspace);
  cudaGetLastError();
  return WithKeys(format, kOp, [&](auto keys) {
    using K = decltype(keys);
    using Bits = typename K::Bits;
    const auto* data = static_cast<const Bits*>(x);
    FiniteInitKernel<<<1, 1, 0, stream>>>(r);
    const unsigned grid = GridFor(n, TileShape<Bits>::kSize);
    FiniteCountKernel<K><<<grid, kTileThreads, 0, stream>>>(
        data, n, Aligned16(data), r);
    FiniteKindKernel<K><<<1, 1, 0, stream>>>(data, r);
    return CopyReport(kOp, report, r, stream);
  });
}

Status CheckFiniteOutcome(const FiniteReport& report, int64_t n,
                          const std::string& message) {
  if (report.bad == 0) return Status::Ok();
  const char* kinds[] = {"nan", "inf", "-inf"};
  return Status::Invalid(NonFiniteError(
      message, static_cast<int64_t>(report.bad), n,
      static_cast<int64_t>(report.first), kinds[report.kind % 3]));
}

}  // namespace gpu
}  // namespace sparsesign
