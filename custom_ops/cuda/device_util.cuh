// Small device helpers shared by the .cu files: a block-wide exclusive
// sum, a warp-aggregated histogram increment, tile loads/stores with 16-byte
// accesses, workspace and launch checks, the report copy, grid sizes and
// the dispatch on float formats.
#ifndef TF_SPARSESIGN_CUDA_DEVICE_UTIL_CUH_
#define TF_SPARSESIGN_CUDA_DEVICE_UTIL_CUH_

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "select_plan.h"
#include "sparse_sign_cuda.h"

namespace sparsesign {
namespace gpu {

// The 64-bit type CUDA atomics take, and "no index" in a 64-bit report.
using AtomicU64 = unsigned long long;
constexpr AtomicU64 kNoIndex = ~AtomicU64{0};

// Exclusive prefix sum of one uint32 per thread over a block of kThreads.
// `scratch` is shared memory of 33 words; *total gets the block's sum.
// Every thread of the block must call it (it synchronizes).
template <int kThreads>
__device__ __forceinline__ uint32_t BlockExclusiveSum(uint32_t v,
                                                      uint32_t* total,
                                                      uint32_t* scratch) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "block size");
  constexpr int kWarps = kThreads / 32;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  uint32_t inclusive = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const uint32_t t = __shfl_up_sync(0xFFFFFFFFu, inclusive, o);
    if (lane >= o) inclusive += t;
  }
  if (lane == 31) scratch[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    const uint32_t w = lane < kWarps ? scratch[lane] : 0;
    uint32_t w_inclusive = w;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const uint32_t t = __shfl_up_sync(0xFFFFFFFFu, w_inclusive, o);
      if (lane >= o) w_inclusive += t;
    }
    scratch[lane] = w_inclusive - w;  // exclusive over warps
    if (lane == 31) scratch[32] = w_inclusive;
  }
  __syncthreads();
  const uint32_t result = scratch[warp] + inclusive - v;
  *total = scratch[32];
  __syncthreads();  // scratch may be reused right after
  return result;
}

// A tile is kTileThreads threads x 64 bytes: each thread owns kItems
// consecutive elements, read as four 16-byte vectors when in range.
constexpr int kTileThreads = 256;

template <typename Bits>
struct TileShape {
  static constexpr int kItems = 64 / static_cast<int>(sizeof(Bits));
  static constexpr int64_t kSize = int64_t{kItems} * kTileThreads;
};

// Loads src[first .. first + kItems); entries at or past `count` read as 0
// (key 0: never counted, never selected).
template <typename Bits>
__device__ __forceinline__ void LoadItems(
    const Bits* __restrict__ src, int64_t count, int64_t first, bool vec_ok,
    Bits (&items)[TileShape<Bits>::kItems]) {
  constexpr int kItems = TileShape<Bits>::kItems;
  constexpr int kPerVec = 16 / static_cast<int>(sizeof(Bits));
  if (vec_ok && first + kItems <= count) {
    const uint4* v = reinterpret_cast<const uint4*>(src + first);
#pragma unroll
    for (int q = 0; q < kItems / kPerVec; ++q) {
      const uint4 w = __ldg(v + q);
      memcpy(&items[q * kPerVec], &w, 16);
    }
  } else {
#pragma unroll
    for (int j = 0; j < kItems; ++j)
      items[j] = first + j < count ? src[first + j] : Bits(0);
  }
}

template <typename Bits>
__device__ __forceinline__ void StoreItems(
    Bits* __restrict__ dst, int64_t count, int64_t first, bool vec_ok,
    const Bits (&items)[TileShape<Bits>::kItems]) {
  constexpr int kItems = TileShape<Bits>::kItems;
  constexpr int kPerVec = 16 / static_cast<int>(sizeof(Bits));
  if (vec_ok && first + kItems <= count) {
    uint4* v = reinterpret_cast<uint4*>(dst + first);
#pragma unroll
    for (int q = 0; q < kItems / kPerVec; ++q) {
      uint4 w;
      memcpy(&w, &items[q * kPerVec], 16);
      v[q] = w;
    }
  } else {
#pragma unroll
    for (int j = 0; j < kItems; ++j)
      if (first + j < count) dst[first + j] = items[j];
  }
}

// Adds 1 to bins[bin] for every lane with `active`, one shared-memory
// atomic per distinct bin in the warp: lanes holding the same bin elect the
// lowest as leader, which adds their count. Every lane of the warp must call
// it (converged); inactive lanes take part in the match but add nothing.
__device__ __forceinline__ void WarpAggregatedIncrement(uint32_t* bins,
                                                        uint32_t bin,
                                                        bool active) {
  const uint32_t value = active ? bin : 0xFFFFFFFFu;  // bins < 2**11
  const unsigned peers = __match_any_sync(0xFFFFFFFFu, value);
  const int lane = static_cast<int>(threadIdx.x & 31);
  if (active && lane == __ffs(static_cast<int>(peers)) - 1)
    atomicAdd(&bins[bin], static_cast<uint32_t>(__popc(peers)));
}

inline bool Aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

// Multiprocessors of the current device (for grid sizes), 132 if unknown.
inline int MultiprocessorCount() {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) !=
          cudaSuccess ||
      sms <= 0)
    return 132;
  return sms;
}

inline size_t AlignUp(size_t bytes) { return (bytes + 255) & ~size_t{255}; }

// "" for cudaSuccess, else a message naming `op` and the error, with the
// fix for the errors a mismatched build causes.
inline std::string CudaFailure(const char* op, cudaError_t err) {
  if (err == cudaSuccess) return std::string();
  std::string msg = std::string(op) + ": CUDA error: " +
                    cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
  switch (err) {
    case cudaErrorInsufficientDriver:
    case cudaErrorUnsupportedPtxVersion:
      msg += ". The GPU kernels were built with a CUDA toolkit newer than "
             "the NVIDIA driver supports: update the driver, or rebuild "
             "with an older toolkit (NVCC=/path/to/nvcc python -m "
             "tf_sparsesign build --force)";
      break;
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorInvalidDeviceFunction:
      msg += ". The GPU kernels were not built for this GPU's "
             "architecture: rebuild with TF_SPARSESIGN_CUDA_ARCHS set to "
             "its compute capability (e.g. 80 for sm_80) and "
             "python -m tf_sparsesign build --force";
      break;
    default:
      break;
  }
  return msg;
}

// Launch errors of the kernels enqueued so far (cudaGetLastError also
// clears them), as an internal status.
inline Status LaunchStatus(const char* op) {
  const std::string failure = CudaFailure(op, cudaGetLastError());
  return failure.empty() ? Status::Ok() : Status::Internal(failure);
}

// The workspace contract of every launcher: large enough, 16-byte aligned.
inline Status CheckWorkspace(const char* op, const void* workspace,
                             size_t bytes, size_t need) {
  if (bytes < need)
    return Status::Internal(std::string(op) + ": GPU workspace too small: " +
                            std::to_string(bytes) + " bytes < " +
                            std::to_string(need) + " needed");
  if (!Aligned16(workspace))
    return Status::Internal(std::string(op) +
                            ": GPU workspace is not 16-byte aligned");
  return Status::Ok();
}

// The last step of every launcher: the device-side report copied into the
// caller's host memory on the stream, then the launch errors so far.
template <typename Report>
Status CopyReport(const char* op, Report* report, const Report* device,
                  cudaStream_t stream) {
  const cudaError_t copy = cudaMemcpyAsync(
      report, device, sizeof(Report), cudaMemcpyDeviceToHost, stream);
  if (copy != cudaSuccess) return Status::Internal(CudaFailure(op, copy));
  return LaunchStatus(op);
}

// A grid for `items` in blocks of `per_block`, at most 8 blocks per
// multiprocessor (grid-stride loops take the rest).
inline unsigned GridFor(int64_t items, int64_t per_block) {
  const int64_t blocks = (items + per_block - 1) / per_block;
  const int64_t most = int64_t{8} * MultiprocessorCount();
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks > most ? most : blocks);
}

// fn(K{}) with the key format (select_plan.h) of `format`.
template <typename Fn>
Status WithKeys(FloatFormat format, const char* op, Fn&& fn) {
  switch (format) {
    case FloatFormat::kFloat16: return fn(plan::F16Keys{});
    case FloatFormat::kBFloat16: return fn(plan::BF16Keys{});
    case FloatFormat::kFloat32: return fn(plan::F32Keys{});
    case FloatFormat::kFloat64: return fn(plan::F64Keys{});
  }
  return Status::Invalid(std::string(op) + ": unknown float format");
}

}  // namespace gpu
}  // namespace sparsesign

#endif  // TF_SPARSESIGN_CUDA_DEVICE_UTIL_CUH_
