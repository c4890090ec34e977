// Small device helpers shared by encode.cu and vote.cu: a block-wide
// exclusive sum, tile loads/stores with 16-byte accesses, launch checks.
#ifndef TF_SPARSESIGN_CUDA_DEVICE_UTIL_CUH_
#define TF_SPARSESIGN_CUDA_DEVICE_UTIL_CUH_

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace sparsesign {
namespace gpu {

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

// "" if every CUDA call so far succeeded, else a message naming `what`.
inline std::string CudaFailure(const char* op, cudaError_t err) {
  if (err == cudaSuccess) return std::string();
  return std::string(op) + ": CUDA error: " + cudaGetErrorName(err) + ": " +
         cudaGetErrorString(err);
}

}  // namespace gpu
}  // namespace sparsesign

#endif  // TF_SPARSESIGN_CUDA_DEVICE_UTIL_CUH_
