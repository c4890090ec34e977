// GPU top-K sign encoding: radix select on magnitude keys, then one
// compaction pass that writes the codes in index order (a scan, no sort).
//
// Launch sequence (all on one stream; nothing waits for it: the last step
// copies the report to the caller's host memory, see sparse_sign_cuda.h):
//   init state
//   for each 11-bit digit p (most significant first):
//     HistogramKernel(p)  pass 0: whole input, + nonzero count + first NaN;
//                         pass 1: whole input, also copies the bucket's keys
//                                 to a candidate buffer when they fit;
//                         pass 2+: only the candidate buffer.
//     ChooseKernel(p)     one block: finds the bucket holding the k-th key;
//                         stops the search once a bucket is taken whole.
//   PadKernel             codes[min(k, nnz) .. k) = -1
//   CompactKernel         decoupled look-back scan of (above T, equal T)
//                         counts; writes codes and the residual.
//   copy of the report    NaN index, nonzero count, the selection check.
// Reads of the input: pass 0, pass 1 (when the threshold is not yet known)
// and the compaction; later passes touch only the (small) bucket.
//
// The fused error-feedback encode (AccumulateEncodeAsync) runs the same
// sequence on the memory, with two changes: pass 0 first adds the gradient
// (memory += gradient in place, the CPU kernel's arithmetic: float_ops.h)
// and histograms the sums; after the compaction, ClearKernel reads each
// selected entry's value (the `values` output) and clears it in the memory.
// Memory traffic: pass 0 reads memory and gradient and writes the memory,
// pass 1 and the compaction read the memory, ClearKernel touches k entries.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "device_util.cuh"
#include "float_ops.h"
#include "select_plan.h"
#include "sparse_sign_cuda.h"

namespace sparsesign {
namespace gpu {
namespace {

using plan::DigitPass;
using plan::kBins;
using plan::SelectState;

using u64 = unsigned long long;  // the type CUDA atomics take

template <typename T>
__device__ __forceinline__ u64* AsU64(T* p) {
  static_assert(sizeof(T) == 8, "64-bit field");
  return reinterpret_cast<u64*>(p);
}

__global__ void InitStateKernel(SelectState* st) { plan::InitState(st); }

// kAccumulate (pass 0 of the fused encode only): the tile is memory +
// gradient, written back to the memory before it is histogrammed; x is
// not read then (memory is x).
template <typename K, bool kAccumulate>
__global__ void __launch_bounds__(kTileThreads)
    HistogramKernel(const typename K::Bits* __restrict__ x, int64_t n,
                    bool x_vec_ok, SelectState* st, uint32_t* hist,
                    typename K::Bits* cand, uint64_t cand_cap, int p,
                    typename K::Bits* memory,
                    const typename K::Bits* __restrict__ gradient,
                    bool acc_vec_ok) {
  using Bits = typename K::Bits;
  using Shape = TileShape<Bits>;
  __shared__ uint32_t bins[kBins];
  __shared__ uint32_t scratch[33];
  __shared__ uint32_t block_nnz;
  __shared__ uint32_t block_nan;
  __shared__ u64 cand_base;

  if (p > 0 && st->done) return;  // uniform: st is not written meanwhile
  const uint64_t prefix = st->prefix;
  const bool collect = p == 1 && st->collect;
  const bool from_cand = p >= 2 && st->collect;
  const Bits* src = from_cand ? cand : x;
  const int64_t count =
      from_cand ? static_cast<int64_t>(st->cand_count) : n;
  const bool vec_ok = from_cand || x_vec_ok;
  const DigitPass pass = plan::PassAt(K::kKeyBits, p);

  for (int b = threadIdx.x; b < kBins; b += blockDim.x) bins[b] = 0;
  if (threadIdx.x == 0) {
    block_nnz = 0;
    block_nan = 0xFFFFFFFFu;
  }
  __syncthreads();

  uint32_t my_nnz = 0, my_nan = 0xFFFFFFFFu;
  const int64_t num_tiles = (count + Shape::kSize - 1) / Shape::kSize;
  for (int64_t tile = blockIdx.x; tile < num_tiles; tile += gridDim.x) {
    const int64_t first = tile * Shape::kSize +
                          int64_t{threadIdx.x} * Shape::kItems;
    Bits items[Shape::kItems];
    if (kAccumulate) {
      Bits grad[Shape::kItems];
      LoadItems(memory, n, first, acc_vec_ok, items);
      LoadItems(gradient, n, first, acc_vec_ok, grad);
#pragma unroll
      for (int j = 0; j < Shape::kItems; ++j)
        items[j] = fops::Arith<K>::Add(items[j], grad[j]);  // 0 + 0 past n
      StoreItems(memory, n, first, acc_vec_ok, items);
    } else {
      LoadItems(src, count, first, vec_ok, items);
    }
    uint32_t matches = 0;
    if (p == 0) {
      // Every key is in the bucket; for bell-shaped data a few bins take
      // most keys, so the warp's lanes add their counts per distinct bin.
#pragma unroll
      for (int j = 0; j < Shape::kItems; ++j) {
        const Bits key = items[j] & K::kMagMask;
        my_nnz += key != 0;
        if (key > K::kInfKey && my_nan == 0xFFFFFFFFu)
          my_nan = static_cast<uint32_t>(first + j);  // n < 2**30
        WarpAggregatedIncrement(bins, plan::DigitOf(key, pass), key != 0);
      }
    } else {
#pragma unroll
      for (int j = 0; j < Shape::kItems; ++j) {
        const Bits key = items[j] & K::kMagMask;
        if (key == 0 || !plan::InBucket(key, pass, prefix, p)) continue;
        atomicAdd(&bins[plan::DigitOf(key, pass)], 1u);
        ++matches;
      }
    }
    if (collect) {  // block-uniform
      uint32_t total;
      const uint32_t before =
          BlockExclusiveSum<kTileThreads>(matches, &total, scratch);
      if (threadIdx.x == 0 && total > 0)
        cand_base = atomicAdd(AsU64(&st->cand_count), u64{total});
      __syncthreads();
      if (matches > 0) {
        u64 pos = cand_base + before;
#pragma unroll
        for (int j = 0; j < Shape::kItems; ++j) {
          const Bits key = items[j] & K::kMagMask;
          if (key == 0 || !plan::InBucket(key, pass, prefix, p)) continue;
          if (pos < cand_cap) cand[pos] = key;  // fits by construction
          ++pos;
        }
      }
      __syncthreads();  // cand_base is rewritten for the next tile
    }
  }

  if (p == 0) {
    atomicAdd(&block_nnz, my_nnz);
    atomicMin(&block_nan, my_nan);
  }
  __syncthreads();
  for (int b = threadIdx.x; b < kBins; b += blockDim.x)
    if (bins[b]) atomicAdd(&hist[b], bins[b]);
  if (p == 0 && threadIdx.x == 0) {
    if (block_nnz) atomicAdd(AsU64(&st->report.nnz), u64{block_nnz});
    if (block_nan != 0xFFFFFFFFu)
      atomicMin(&st->report.first_nan, block_nan);
  }
}

// One block of 1024 threads, two bins each, scanned from the top bin down.
constexpr int kChooseThreads = kBins / 2;

template <typename K>
__global__ void __launch_bounds__(kChooseThreads)
    ChooseKernel(SelectState* st, uint32_t* hist, int p, int64_t k,
                 uint64_t cand_cap) {
  __shared__ uint32_t scratch[33];
  __shared__ uint32_t skip;
  if (threadIdx.x == 0) {
    skip = st->done;
    if (!skip && p == 0) skip = plan::StartSelection(st, k, K::kMagMask);
  }
  __syncthreads();
  if (skip) return;
  const int64_t need = st->need;
  const uint32_t b0 = kBins - 1 - 2 * threadIdx.x, b1 = b0 - 1;
  const uint32_t c0 = hist[b0], c1 = hist[b1];
  uint32_t total;
  const uint32_t before =
      BlockExclusiveSum<kChooseThreads>(c0 + c1, &total, scratch);
  const DigitPass pass = plan::PassAt(K::kKeyBits, p);
  const int passes = plan::NumPasses(K::kKeyBits);
  // Exactly one bin covers `need`: counts fit in uint32 since n < 2**30.
  if (plan::BinCoversNeed(before, c0, need)) {
    plan::Advance(st, pass, p, passes, b0, c0, need - before);
    if (p == 0) st->collect = plan::WorthCollecting(passes, c0, cand_cap);
  } else if (plan::BinCoversNeed(before + c0, c1, need)) {
    plan::Advance(st, pass, p, passes, b1, c1, need - before - c0);
    if (p == 0) st->collect = plan::WorthCollecting(passes, c1, cand_cap);
  }
  hist[b0] = 0;  // ready for the next pass
  hist[b1] = 0;
}

__global__ void PadKernel(const SelectState* st, int32_t* codes, int64_t k) {
  if (st->report.error) return;
  const uint64_t nnz = st->report.nnz;
  const int64_t filled =
      nnz < static_cast<uint64_t>(k) ? static_cast<int64_t>(nnz) : k;
  for (int64_t i = filled + blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
       i < k; i += int64_t{gridDim.x} * blockDim.x)
    codes[i] = kPadCode;
}

// The fused encode's last step: values[j] = memory[index of codes[j]] (0 for
// padding), then that memory entry is cleared. Indices in a message are
// distinct, so no two threads touch one entry.
template <typename Bits>
__global__ void ClearKernel(const SelectState* st, const int32_t* codes,
                            int64_t k, Bits* memory, int64_t n,
                            Bits* values) {
  if (st->report.error || st->report.overflow) return;
  for (int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; j < k;
       j += int64_t{gridDim.x} * blockDim.x) {
    const int32_t code = codes[j];
    const int64_t index = code >> 1;
    Bits v = 0;
    if (code >= 0 && index < n) {
      v = memory[index];
      memory[index] = Bits(0);
    }
    if (values != nullptr) values[j] = v;
  }
}

__device__ __forceinline__ u64 LoadVolatile(const uint64_t* p) {
  return *reinterpret_cast<const volatile u64*>(p);
}

__device__ __forceinline__ u64 WarpSum(u64 v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
  return v;
}

// Warp 0 of tile `tile`: the packed counts of all earlier tiles, walking
// back 32 descriptors at a time until one holds an inclusive prefix.
__device__ u64 LookBack(const uint64_t* desc, int64_t tile) {
  const int lane = threadIdx.x & 31;
  u64 exclusive = 0;
  for (int64_t base = tile - 1;; base -= 32) {
    const int64_t t = base - lane;
    u64 d = t >= 0 ? LoadVolatile(desc + t) : plan::kFlagInclusive;
    while (__any_sync(0xFFFFFFFFu, (d & plan::kFlagMask) == 0)) {
      if ((d & plan::kFlagMask) == 0) d = LoadVolatile(desc + t);
    }
    const uint32_t inclusive = __ballot_sync(
        0xFFFFFFFFu, (d & plan::kFlagMask) == plan::kFlagInclusive);
    u64 v = d & ~plan::kFlagMask;
    if (inclusive) {
      const int stop = __ffs(inclusive) - 1;  // nearest inclusive tile
      if (lane > stop) v = 0;
      return exclusive + WarpSum(v);
    }
    exclusive += WarpSum(v);
  }
}

// 4 blocks of 256 threads per multiprocessor: at most 64 registers.
template <typename K>
__global__ void __launch_bounds__(kTileThreads, 4)
    CompactKernel(const typename K::Bits* __restrict__ x, int64_t n,
                  bool vec_ok, SelectState* st, uint64_t* desc,
                  int64_t num_tiles, int32_t* __restrict__ codes, int64_t k,
                  typename K::Bits* __restrict__ residual, bool res_vec_ok) {
  using Bits = typename K::Bits;
  using Shape = TileShape<Bits>;
  __shared__ uint32_t scratch[33];
  __shared__ uint32_t tile_id;
  __shared__ u64 tile_prefix;
  if (st->report.error) return;  // uniform
  // Tiles take ids in start order, so every earlier tile is running or done
  // and the look-back below cannot wait on a tile that never starts.
  if (threadIdx.x == 0) tile_id = atomicAdd(&st->tile_ticket, 1u);
  __syncthreads();
  const int64_t tile = tile_id;
  const uint64_t threshold = st->threshold;
  const int64_t tie_take = st->tie_take;
  const int64_t first = tile * Shape::kSize +
                        int64_t{threadIdx.x} * Shape::kItems;

  Bits items[Shape::kItems];
  LoadItems(x, n, first, vec_ok, items);
  uint32_t above = 0, ties = 0;
#pragma unroll
  for (int j = 0; j < Shape::kItems; ++j) {
    const uint64_t key = items[j] & K::kMagMask;
    const bool in_range = first + j < n;
    above += in_range && key > threshold;
    ties += in_range && key == threshold;
  }
  // Per tile both counts stay below 2**16: pack them in one scan.
  uint32_t tile_total;
  const uint32_t before =
      BlockExclusiveSum<kTileThreads>(above | (ties << 16), &tile_total,
                                      scratch);
  if (threadIdx.x < 32) {
    const u64 aggregate =
        plan::PackCounts(tile_total & 0xFFFFu, tile_total >> 16);
    u64 exclusive = 0;
    if (tile == 0) {
      if (threadIdx.x == 0)
        atomicExch(AsU64(desc), plan::kFlagInclusive | aggregate);
    } else {
      if (threadIdx.x == 0)
        atomicExch(AsU64(desc + tile), plan::kFlagAggregate | aggregate);
      exclusive = LookBack(desc, tile);
      if (threadIdx.x == 0)
        atomicExch(AsU64(desc + tile),
                   plan::kFlagInclusive | (exclusive + aggregate));
    }
    if (threadIdx.x == 0) {
      tile_prefix = exclusive;
      if (tile == num_tiles - 1) {
        const u64 all = exclusive + aggregate;
        st->report.selected = plan::CodePosition(plan::AboveOf(all),
                                          plan::TiesOf(all), tie_take);
      }
    }
  }
  __syncthreads();

  uint64_t above_before = plan::AboveOf(tile_prefix) + (before & 0xFFFFu);
  uint64_t ties_before = plan::TiesOf(tile_prefix) + (before >> 16);
  Bits kept[Shape::kItems];
#pragma unroll
  for (int j = 0; j < Shape::kItems; ++j) {
    const int64_t i = first + j;
    const Bits bits = items[j];
    const uint64_t key = bits & K::kMagMask;
    const bool in_range = i < n;
    const bool selected =
        in_range && plan::Selected(key, ties_before, threshold, tie_take);
    if (selected) {
      const uint64_t pos =
          plan::CodePosition(above_before, ties_before, tie_take);
      const int32_t sign = static_cast<int32_t>(bits >> (K::kWidth - 1));
      if (pos < static_cast<uint64_t>(k)) {
        codes[pos] = static_cast<int32_t>(i << 1) | sign;
      } else {
        st->report.overflow = 1;
      }
    }
    above_before += in_range && key > threshold;
    ties_before += in_range && key == threshold;
    kept[j] = selected ? Bits(0) : bits;
  }
  if (residual != nullptr)
    StoreItems(residual, n, first, res_vec_ok, kept);
}

// Workspace: state | histogram | tile descriptors | candidate keys.
struct EncodeLayout {
  size_t state = 0, hist = 0, desc = 0, cand = 0, total = 0;
  int64_t num_tiles = 0;
  uint64_t cand_cap = 0;
};

EncodeLayout LayoutFor(int64_t n, size_t elem_bytes) {
  EncodeLayout l;
  const int64_t tile = int64_t{kTileThreads} * (64 / elem_bytes);
  l.num_tiles = (n + tile - 1) / tile;
  // The pass-0 bucket of the k-th key usually holds well under n/8 keys
  // (1/8 of an octave); larger buckets fall back to full-input passes.
  l.cand_cap = static_cast<uint64_t>(std::min<int64_t>(n, n / 8 + 4096));
  l.state = 0;
  l.hist = AlignUp(sizeof(SelectState));
  l.desc = l.hist + AlignUp(sizeof(uint32_t) * kBins);
  l.cand = l.desc + AlignUp(sizeof(uint64_t) * std::max<int64_t>(1, l.num_tiles));
  l.total = l.cand + AlignUp(l.cand_cap * elem_bytes);
  return l;
}

size_t ElementBytes(FloatFormat format) {
  switch (format) {
    case FloatFormat::kFloat16:
    case FloatFormat::kBFloat16:
      return 2;
    case FloatFormat::kFloat32:
      return 4;
    case FloatFormat::kFloat64:
      return 8;
  }
  return 4;
}

Status NaNError(int64_t index, int64_t n) {  // same text as the CPU core
  return Status::Invalid(
      "sparse_sign_encode: input contains NaN (first at flat index " +
      std::to_string(index) + " of " + std::to_string(n) +
      "); NaN has no magnitude order, fix the gradient before encoding");
}

// What an encode of nothing reports (no kernel runs for n == 0).
EncodeReport EmptyReport() {
  EncodeReport r;
  r.nnz = 0;
  r.selected = 0;
  r.first_nan = 0xFFFFFFFFu;
  r.error = plan::kErrNone;
  r.overflow = 0;
  r.unused = 0;
  return r;
}

// The encode of x; with a gradient, the fused encode of the memory x (see
// the top of this file): values (may be null) get the selected entries.
template <typename K>
Status EncodeTyped(const typename K::Bits* x, int64_t n, int64_t k,
                   int32_t* codes, typename K::Bits* residual, char* ws,
                   EncodeReport* report, cudaStream_t stream,
                   const typename K::Bits* gradient = nullptr,
                   typename K::Bits* values = nullptr) {
  using Bits = typename K::Bits;
  const char* op = gradient ? "accumulate_encode" : "sparse_sign_encode";
  const EncodeLayout l = LayoutFor(n, sizeof(Bits));
  SelectState* st = reinterpret_cast<SelectState*>(ws + l.state);
  uint32_t* hist = reinterpret_cast<uint32_t*>(ws + l.hist);
  uint64_t* desc = reinterpret_cast<uint64_t*>(ws + l.desc);
  auto* cand = reinterpret_cast<Bits*>(ws + l.cand);
  Bits* memory = gradient ? const_cast<Bits*>(x) : nullptr;

  cudaGetLastError();  // launch errors below are ours alone
  InitStateKernel<<<1, 1, 0, stream>>>(st);
  cudaMemsetAsync(hist, 0, sizeof(uint32_t) * kBins, stream);
  cudaMemsetAsync(desc, 0, sizeof(uint64_t) * l.num_tiles, stream);
  const bool x_vec = Aligned16(x);
  const bool acc_vec = x_vec && Aligned16(gradient);
  const int64_t hist_grid =
      std::max<int64_t>(1, std::min<int64_t>(l.num_tiles,
                                             int64_t{4} * MultiprocessorCount()));
  const unsigned grid = static_cast<unsigned>(hist_grid);
  const int passes = plan::NumPasses(K::kKeyBits);
  for (int p = 0; p < passes; ++p) {
    if (gradient != nullptr && p == 0) {
      HistogramKernel<K, true><<<grid, kTileThreads, 0, stream>>>(
          x, n, x_vec, st, hist, cand, l.cand_cap, p, memory, gradient,
          acc_vec);
    } else {
      HistogramKernel<K, false><<<grid, kTileThreads, 0, stream>>>(
          x, n, x_vec, st, hist, cand, l.cand_cap, p, nullptr, nullptr,
          false);
    }
    ChooseKernel<K><<<1, kChooseThreads, 0, stream>>>(st, hist, p, k,
                                                     l.cand_cap);
  }
  const int64_t k_grid = std::min<int64_t>((k + 255) / 256, 1024);
  if (k > 0) {
    PadKernel<<<static_cast<unsigned>(k_grid), 256, 0, stream>>>(st, codes,
                                                                 k);
  }
  if (k > 0 || residual != nullptr) {
    CompactKernel<K><<<static_cast<unsigned>(l.num_tiles), kTileThreads, 0,
                       stream>>>(x, n, x_vec, st, desc, l.num_tiles, codes, k,
                                 residual, residual && Aligned16(residual));
  }
  if (gradient != nullptr && k > 0) {
    ClearKernel<Bits><<<static_cast<unsigned>(k_grid), 256, 0, stream>>>(
        st, codes, k, memory, n, values);
  }
  return CopyReport(op, report, &st->report, stream);
}

}  // namespace

size_t EncodeWorkspaceBytes(FloatFormat format, int64_t n) {
  return LayoutFor(std::max<int64_t>(n, 0), ElementBytes(format)).total;
}

namespace {

// Both encodes' host side: the core's argument checks, the workspace
// contract, then EncodeTyped for the format.
Status Enqueue(const char* op, FloatFormat format, const void* x, int64_t n,
               int64_t k, int32_t* codes, void* residual, void* workspace,
               size_t workspace_bytes, EncodeReport* report,
               cudaStream_t stream, const void* gradient, void* values) {
  const Status sizes = CheckEncodeSizes(n, k);
  if (!sizes.ok) return sizes;
  *report = EmptyReport();
  if (n == 0) return Status::Ok();
  const Status ws_ok = CheckWorkspace(op, workspace, workspace_bytes,
                                      EncodeWorkspaceBytes(format, n));
  if (!ws_ok.ok) return ws_ok;
  return WithKeys(format, op, [&](auto keys) {
    using Bits = typename decltype(keys)::Bits;
    return EncodeTyped<decltype(keys)>(
        static_cast<const Bits*>(x), n, k, codes, static_cast<Bits*>(residual),
        static_cast<char*>(workspace), report, stream,
        static_cast<const Bits*>(gradient), static_cast<Bits*>(values));
  });
}

}  // namespace

Status EncodeAsync(FloatFormat format, const void* x, int64_t n, int64_t k,
                   int32_t* codes, void* residual, void* workspace,
                   size_t workspace_bytes, EncodeReport* report,
                   cudaStream_t stream) {
  return Enqueue("sparse_sign_encode", format, x, n, k, codes, residual,
                 workspace, workspace_bytes, report, stream, nullptr,
                 nullptr);
}

Status AccumulateEncodeAsync(FloatFormat format, void* memory,
                             const void* gradient, int64_t n, int64_t k,
                             int32_t* codes, void* values, void* workspace,
                             size_t workspace_bytes, EncodeReport* report,
                             cudaStream_t stream) {
  return Enqueue("accumulate_encode", format, memory, n, k, codes, nullptr,
                 workspace, workspace_bytes, report, stream, gradient,
                 values);
}

Status EncodeOutcome(const EncodeReport& report, int64_t n, int64_t k,
                     bool with_residual) {
  if (n == 0) return Status::Ok();
  if (report.error == plan::kErrNaN) return NaNError(report.first_nan, n);
  const uint64_t expect = std::min<uint64_t>(report.nnz, k);
  if (report.overflow || ((k > 0 || with_residual) && report.selected != expect))
    return Status::Internal(
        "sparse_sign_encode: internal error (GPU): selected " +
        std::to_string(report.selected) + ", expected " +
        std::to_string(expect));
  return Status::Ok();
}

}  // namespace gpu
}  // namespace sparsesign
