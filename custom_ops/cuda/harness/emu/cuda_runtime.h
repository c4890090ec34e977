// CPU emulation of the few CUDA features encode.cu and vote.cu use, so the
// kernels themselves can run (slowly) on a machine without a GPU.
//
// Only for tests: tests/test_cuda_compile.py rewrites the .cu files
// (harness/emulate_launches.py: launches become EMU_LAUNCH, __shared__
// declarations become per-block storage) and compiles them with g++ and this
// folder first on the include path. The threads of a block are fibers on
// one OS thread; __syncthreads and the warp intrinsics (shuffle, ballot,
// any, match) are barriers that park a fiber until its peers arrive.
// Device memory is host memory.
//
// Block scheduling, from the environment (read at each launch):
//   EMU_BLOCK_ORDER      forward (default) | reverse | shuffle: the order in
//                        which blocks start;
//   EMU_RESIDENT_BLOCKS  how many blocks are resident at once (default 1:
//                        each block runs to its end before the next starts);
//                        with more, the scheduler switches between resident
//                        blocks at barriers, picked at random, so a block
//                        may wait (spin) on one that has not finished;
//   EMU_SEED             seed of the shuffle and of the switching (default 1).
// Deterministic for a given setting. A launch that needs more than
// EMU_MAX_SWEEPS (default 200000) block sweeps aborts: blocks waiting on
// blocks that cannot run (a deadlock on a real GPU too) end the test
// instead of hanging it. What it cannot show: the GPU memory
// model (it is sequentially consistent), timing, real occupancy. A GPU run
// (harness.cu, compute-sanitizer) is still the judge.
#ifndef TF_SPARSESIGN_EMU_CUDA_RUNTIME_H_
#define TF_SPARSESIGN_EMU_CUDA_RUNTIME_H_

#include <ucontext.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ \
  static_assert(false, "__shared__ must be rewritten by emulate_launches.py");
#define CUDART_VERSION 13000

struct uint3 { unsigned x = 0, y = 0, z = 0; };
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct uint4 { unsigned x, y, z, w; };

using cudaStream_t = struct EmuStream*;
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoKernelImageForDevice = 209,
  cudaErrorUnsupportedPtxVersion = 222,
  cudaErrorUnknown = 999
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost,
  cudaMemcpyDeviceToDevice, cudaMemcpyDefault
};
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16 };

// Set by the scheduler before it resumes each emulated thread.
inline uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

namespace emu {

// Emulated multiprocessors: few, so grid-stride loops really stride.
constexpr int kMultiprocessors = 2;
constexpr size_t kStackBytes = 128 << 10;

struct Barrier {
  int expected = 0, arrived = 0;
  unsigned generation = 0;
};

struct Fiber {
  ucontext_t context;
  bool done = false;
};

// One resident block: its fibers, barriers, warp exchange words and shared
// memory (keyed by the declaration, see emulate_launches.py).
struct BlockRun {
  uint3 id;
  int slot = 0;  // which set of fiber stacks it uses
  std::vector<Fiber> fibers;
  unsigned live = 0;
  int current = 0;
  Barrier block;
  std::vector<Barrier> warps;
  std::vector<std::array<uint64_t, 32>> slots;
  std::map<const void*, std::unique_ptr<char[]>> shared;
  std::function<void()> body;
};

inline BlockRun* g_run = nullptr;
inline ucontext_t g_scheduler;

inline void Yield() {
  swapcontext(&g_run->fibers[g_run->current].context, &g_scheduler);
}

inline void Wait(Barrier& b) {
  const unsigned generation = b.generation;
  if (++b.arrived == b.expected) {
    b.arrived = 0;
    ++b.generation;
    return;
  }
  while (b.generation == generation) Yield();
}

// A thread that returned no longer holds back barriers (as on a GPU).
inline void Leave(Barrier& b) {
  --b.expected;
  if (b.arrived > 0 && b.arrived == b.expected) {
    b.arrived = 0;
    ++b.generation;
  }
}

inline void FiberMain() {
  BlockRun* run = g_run;
  run->body();
  const unsigned t = threadIdx.x;
  Leave(run->block);
  Leave(run->warps[t / 32]);
  run->fibers[run->current].done = true;
}  // returns to g_scheduler through uc_link

inline char* Stack(int slot, unsigned t) {
  static std::vector<std::vector<std::unique_ptr<char[]>>> stacks;
  if (stacks.size() <= static_cast<size_t>(slot)) stacks.resize(slot + 1);
  auto& pool = stacks[slot];
  while (pool.size() <= t) pool.emplace_back(new char[kStackBytes]);
  return pool[t].get();
}

// Storage of one __shared__ declaration in the running block; filled with
// garbage at first use, as a GPU does not clear shared memory.
template <typename T>
T& Shared(const void* tag) {
  std::unique_ptr<char[]>& slot = g_run->shared[tag];
  if (!slot) {
    slot.reset(new char[sizeof(T)]);
    std::memset(slot.get(), 0xA5, sizeof(T));
  }
  return *reinterpret_cast<T*>(slot.get());
}

inline std::unique_ptr<BlockRun> StartBlock(dim3 block, uint3 id, int slot,
                                            std::function<void()> body) {
  auto run = std::make_unique<BlockRun>();
  run->id = id;
  run->slot = slot;
  run->body = std::move(body);
  run->fibers.resize(block.x);
  run->live = block.x;
  run->block.expected = static_cast<int>(block.x);
  const unsigned num_warps = (block.x + 31) / 32;
  run->warps.resize(num_warps);
  run->slots.resize(num_warps);
  for (unsigned w = 0; w < num_warps; ++w)
    run->warps[w].expected =
        static_cast<int>(block.x - 32 * w < 32 ? block.x - 32 * w : 32);
  for (unsigned t = 0; t < block.x; ++t) {
    ucontext_t& c = run->fibers[t].context;
    getcontext(&c);
    c.uc_stack.ss_sp = Stack(slot, t);
    c.uc_stack.ss_size = kStackBytes;
    c.uc_link = &g_scheduler;
    makecontext(&c, FiberMain, 0);
  }
  return run;
}

// Resumes every unfinished fiber of `run` once (each runs to its next
// barrier or its end).
inline void Sweep(BlockRun* run, dim3 grid, dim3 block) {
  BlockRun* outer = g_run;
  g_run = run;
  blockIdx = run->id;
  blockDim = block;
  gridDim = grid;
  for (unsigned t = 0; t < block.x; ++t) {
    if (run->fibers[t].done) continue;
    run->current = static_cast<int>(t);
    threadIdx = uint3{t, 0, 0};
    swapcontext(&g_scheduler, &run->fibers[t].context);
    if (run->fibers[t].done) --run->live;
  }
  g_run = outer;
}

struct Schedule {
  std::string order = "forward";
  int resident = 1;
  long max_sweeps = 200000;
  std::mt19937_64 rng{1};
};

inline Schedule& CurrentSchedule() {
  static Schedule s = [] {
    Schedule out;
    if (const char* o = std::getenv("EMU_BLOCK_ORDER")) out.order = o;
    if (const char* r = std::getenv("EMU_RESIDENT_BLOCKS"))
      out.resident = std::max(1, std::atoi(r));
    if (const char* seed = std::getenv("EMU_SEED"))
      out.rng.seed(std::strtoull(seed, nullptr, 10));
    if (const char* cap = std::getenv("EMU_MAX_SWEEPS"))
      out.max_sweeps = std::atol(cap);
    if (out.order != "forward" && out.order != "reverse" &&
        out.order != "shuffle") {
      std::fprintf(stderr, "EMU_BLOCK_ORDER must be forward, reverse or "
                   "shuffle, got %s\n", out.order.c_str());
      std::exit(2);
    }
    return out;
  }();
  return s;
}

// Runs `body` (one block's kernel call) for every block of the grid.
inline void RunGrid(dim3 grid, dim3 block,
                    const std::function<void()>& body) {
  Schedule& s = CurrentSchedule();
  std::vector<uint3> ids;
  for (unsigned by = 0; by < grid.y; ++by)
    for (unsigned bx = 0; bx < grid.x; ++bx) ids.push_back(uint3{bx, by, 0});
  if (s.order == "reverse") std::reverse(ids.begin(), ids.end());
  if (s.order == "shuffle") std::shuffle(ids.begin(), ids.end(), s.rng);
  std::vector<std::unique_ptr<BlockRun>> running;
  std::vector<int> free_slots;
  for (int i = s.resident - 1; i >= 0; --i) free_slots.push_back(i);
  size_t next = 0;
  long sweeps_done = 0;
  while (next < ids.size() || !running.empty()) {
    while (!free_slots.empty() && next < ids.size()) {
      running.push_back(StartBlock(block, ids[next++], free_slots.back(),
                                   body));
      free_slots.pop_back();
    }
    // One resident block advances by one to three sweeps.
    const size_t pick = running.size() == 1 ? 0 : s.rng() % running.size();
    BlockRun* run = running[pick].get();
    const int sweeps = s.resident == 1 ? 1 : 1 + static_cast<int>(s.rng() % 3);
    for (int i = 0; i < sweeps && run->live > 0; ++i) Sweep(run, grid, block);
    if ((sweeps_done += sweeps) > s.max_sweeps) {
      std::fprintf(stderr, "emulation: a launch of %u x %u blocks did not "
                   "finish within %ld sweeps (order %s, %d resident): blocks "
                   "wait on blocks that cannot run\n", grid.x, grid.y,
                   s.max_sweeps, s.order.c_str(), s.resident);
      std::abort();
    }
    if (run->live == 0) {
      free_slots.push_back(run->slot);
      running.erase(running.begin() + static_cast<std::ptrdiff_t>(pick));
    }
  }
}

}  // namespace emu

inline void __syncthreads() { emu::Wait(emu::g_run->block); }

namespace emu {

// Every lane posts a word, all wait, each reads what it needs, all wait.
template <typename T, typename Pick>
T Exchange(T v, Pick pick) {
  static_assert(sizeof(T) <= 8, "word-sized");
  const unsigned warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  BlockRun* run = g_run;
  run->slots[warp][lane] = bits;
  Wait(run->warps[warp]);
  const uint64_t got = pick(run->slots[warp].data(), lane);
  Wait(run->warps[warp]);
  T out;
  std::memcpy(&out, &got, sizeof(T));
  return out;
}

}  // namespace emu

template <typename T>
T __shfl_up_sync(unsigned, T v, int delta) {
  return emu::Exchange(v, [&](const uint64_t* s, unsigned lane) {
    uint64_t mine = 0;
    std::memcpy(&mine, &v, sizeof(T));
    return lane >= static_cast<unsigned>(delta) ? s[lane - delta] : mine;
  });
}
template <typename T>
T __shfl_xor_sync(unsigned, T v, int mask) {
  return emu::Exchange(v, [&](const uint64_t* s, unsigned lane) {
    return s[lane ^ static_cast<unsigned>(mask)];
  });
}
inline unsigned __ballot_sync(unsigned, int pred) {
  const uint32_t p = pred ? 1u : 0u;
  return emu::Exchange(p, [](const uint64_t* s, unsigned) {
    uint64_t m = 0;
    for (int i = 0; i < 32; ++i) m |= (s[i] & 1) << i;
    return m;
  });
}
inline int __any_sync(unsigned mask, int pred) {
  return __ballot_sync(mask, pred) != 0;
}
// Lanes (of the full warp: the kernels call it converged) holding `value`.
inline unsigned __match_any_sync(unsigned, unsigned value) {
  return emu::Exchange(value, [](const uint64_t* s, unsigned lane) {
    uint64_t m = 0;
    for (int i = 0; i < 32; ++i) m |= uint64_t{s[i] == s[lane]} << i;
    return m;
  });
}
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
template <typename T>
T __ldg(const T* p) { return *p; }
using std::isfinite;

template <typename T>
T atomicAdd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_add(v); }
template <typename T>
T atomicOr(T* p, T v) { return std::atomic_ref<T>(*p).fetch_or(v); }
template <typename T>
T atomicExch(T* p, T v) { return std::atomic_ref<T>(*p).exchange(v); }
template <typename T>
T atomicMin(T* p, T v) {
  std::atomic_ref<T> a(*p);
  T old = a.load();
  while (v < old && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}
template <typename T>
T atomicMax(T* p, T v) {
  std::atomic_ref<T> a(*p);
  T old = a.load();
  while (v > old && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}

namespace emu {

// Runs kernel(args...) over the grid (see RunGrid for the block order).
template <typename... P>
struct Launch {
  void (*kernel)(P...);
  dim3 grid, block;
  template <typename... A>
  void operator()(A&&... args) const {
    RunGrid(grid, block, [&]() { kernel(static_cast<P>(args)...); });
  }
};

template <typename... P>
Launch<P...> MakeLaunch(void (*kernel)(P...), dim3 grid, dim3 block,
                        size_t = 0, cudaStream_t = nullptr) {
  return Launch<P...>{kernel, grid, block};
}

}  // namespace emu

#define EMU_LAUNCH(kernel, ...) ::emu::MakeLaunch(kernel, __VA_ARGS__)

inline cudaError_t cudaMemsetAsync(void* p, int v, size_t n,
                                   cudaStream_t = nullptr) {
  std::memset(p, v, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n,
                                   cudaMemcpyKind, cudaStream_t = nullptr) {
  std::memcpy(d, s, n);
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr, int) {
  *v = emu::kMultiprocessors;
  return cudaSuccess;
}
// The emulated driver supports CUDA 13.0, or what EMU_DRIVER_VERSION says
// (e.g. 12040), to exercise the driver check.
inline cudaError_t cudaDriverGetVersion(int* v) {
  const char* env = std::getenv("EMU_DRIVER_VERSION");
  *v = env ? std::atoi(env) : CUDART_VERSION;
  return cudaSuccess;
}
// What the standalone harness needs besides the kernels' own calls.
inline cudaError_t cudaMalloc(void** p, size_t n) {
  *p = std::aligned_alloc(256, (n + 255) / 256 * 256);
  return *p ? cudaSuccess : cudaErrorUnknown;
}
inline cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMallocHost(void** p, size_t n) {
  return cudaMalloc(p, n);
}
inline cudaError_t cudaFreeHost(void* p) { return cudaFree(p); }
inline cudaError_t cudaMemcpy(void* d, const void* s, size_t n,
                              cudaMemcpyKind) {
  std::memcpy(d, s, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemset(void* p, int v, size_t n) {
  std::memset(p, v, n);
  return cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  *free_bytes = *total = size_t{8} << 30;
  return cudaSuccess;
}
struct cudaDeviceProp {
  char name[256];
  int major, minor, multiProcessorCount;
};
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) {
  std::snprintf(p->name, sizeof(p->name), "CPU emulation");
  p->major = 0;
  p->minor = 0;
  p->multiProcessorCount = emu::kMultiprocessors;
  return cudaSuccess;
}
using cudaEvent_t = std::chrono::steady_clock::time_point*;
inline cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new std::chrono::steady_clock::time_point();
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t = nullptr) {
  *e = std::chrono::steady_clock::now();
  return cudaSuccess;
}
inline cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a,
                                        cudaEvent_t b) {
  *ms = std::chrono::duration<float, std::milli>(*b - *a).count();
  return cudaSuccess;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline long long __double_as_longlong(double d) {
  long long u;
  std::memcpy(&u, &d, 8);
  return u;
}
inline double cospi(double x) { return std::cos(3.14159265358979323846 * x); }
using std::log;
using std::sqrt;

inline const char* cudaGetErrorName(cudaError_t) { return "cudaErrorEmu"; }
inline const char* cudaGetErrorString(cudaError_t) { return "emulated"; }

#endif  // TF_SPARSESIGN_EMU_CUDA_RUNTIME_H_
