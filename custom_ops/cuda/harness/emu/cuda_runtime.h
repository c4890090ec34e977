// CPU emulation of the few CUDA features encode.cu and vote.cu use, so the
// kernels themselves can run (slowly) on a machine without a GPU.
//
// Only for tests: tests/test_cuda_compile.py rewrites `k<<<g, b, s, st>>>(`
// into `EMU_LAUNCH(k, g, b, s, st)(` (harness/emulate_launches.py) and
// compiles the .cu files with g++ and this folder first on the include path.
// Blocks run one after another; the threads of a block run as fibers on one
// OS thread, with __syncthreads and the warp intrinsics (shuffle, ballot,
// any) as barriers that park a fiber until its peers arrive. Device memory is host
// memory. What it cannot show: races between blocks, memory-model and
// timing effects, real occupancy. A GPU run (harness.cu) is still needed.
#ifndef TF_SPARSESIGN_EMU_CUDA_RUNTIME_H_
#define TF_SPARSESIGN_EMU_CUDA_RUNTIME_H_

#include <ucontext.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <array>
#include <functional>
#include <memory>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static  // one block at a time: statics are its shared memory

struct uint3 { unsigned x = 0, y = 0, z = 0; };
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct uint4 { unsigned x, y, z, w; };

using cudaStream_t = struct EmuStream*;
enum cudaError_t { cudaSuccess = 0, cudaErrorUnknown = 999 };
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

// The threads of a block are fibers (ucontext) on the calling OS thread;
// a barrier parks a fiber until every live participant has arrived.
struct Barrier {
  int expected = 0, arrived = 0;
  unsigned generation = 0;
};

struct Fiber {
  ucontext_t context;
  bool done = false;
};

struct BlockRun {
  std::vector<Fiber> fibers;
  ucontext_t scheduler;
  int current = 0;
  Barrier block;
  std::vector<Barrier> warps;
  std::vector<std::array<uint64_t, 32>> slots;  // warp exchange words
  std::function<void()> body;
};

inline BlockRun* g_run = nullptr;

inline void Yield() {
  swapcontext(&g_run->fibers[g_run->current].context, &g_run->scheduler);
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
}  // returns to run->scheduler through uc_link

inline char* Stack(unsigned t) {
  static std::vector<std::unique_ptr<char[]>> stacks;
  while (stacks.size() <= t) stacks.emplace_back(new char[kStackBytes]);
  return stacks[t].get();
}

inline void RunBlock(dim3 grid, dim3 block, uint3 block_id,
                     std::function<void()> body) {
  BlockRun run;
  run.body = std::move(body);
  run.fibers.resize(block.x);
  run.block.expected = static_cast<int>(block.x);
  const unsigned num_warps = (block.x + 31) / 32;
  run.warps.resize(num_warps);
  run.slots.resize(num_warps);
  for (unsigned w = 0; w < num_warps; ++w)
    run.warps[w].expected = static_cast<int>(
        block.x - 32 * w < 32 ? block.x - 32 * w : 32);
  for (unsigned t = 0; t < block.x; ++t) {
    ucontext_t& c = run.fibers[t].context;
    getcontext(&c);
    c.uc_stack.ss_sp = Stack(t);
    c.uc_stack.ss_size = kStackBytes;
    c.uc_link = &run.scheduler;
    makecontext(&c, FiberMain, 0);
  }
  BlockRun* outer = g_run;
  g_run = &run;
  blockIdx = block_id;
  blockDim = block;
  gridDim = grid;
  for (unsigned live = block.x; live > 0;) {
    for (unsigned t = 0; t < block.x; ++t) {
      if (run.fibers[t].done) continue;
      run.current = static_cast<int>(t);
      threadIdx = uint3{t, 0, 0};
      swapcontext(&run.scheduler, &run.fibers[t].context);
      if (run.fibers[t].done) --live;
    }
  }
  g_run = outer;
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
  g_run->slots[warp][lane] = bits;
  Wait(g_run->warps[warp]);
  const uint64_t got = pick(g_run->slots[warp].data(), lane);
  Wait(g_run->warps[warp]);
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
inline int __ffs(unsigned x) { return __builtin_ffs(static_cast<int>(x)); }
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

namespace emu {

// Runs kernel(args...) over the grid, one block after another.
template <typename... P>
struct Launch {
  void (*kernel)(P...);
  dim3 grid, block;
  template <typename... A>
  void operator()(A&&... args) const {
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx)
        RunBlock(grid, block, uint3{bx, by, 0},
                 [&]() { kernel(static_cast<P>(args)...); });
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
// What the standalone harness needs besides the kernels' own calls.
inline cudaError_t cudaMalloc(void** p, size_t n) {
  *p = std::aligned_alloc(256, (n + 255) / 256 * 256);
  return *p ? cudaSuccess : cudaErrorUnknown;
}
inline cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
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
