// Helpers of the step kernels' checks and timings (step_checks.cc,
// packed_checks.cc, step_bench.cc): device buffers, input families made on
// the host, NaN-aware comparison, the CPU references' runner.
#ifndef TF_SPARSESIGN_CUDA_HARNESS_CHECK_UTIL_H_
#define TF_SPARSESIGN_CUDA_HARNESS_CHECK_UTIL_H_

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "../../core/sparse_sign_core.h"
#include "../float_ops.h"
#include "../step_cuda.h"

namespace step_checks {
namespace util {

using sparsesign::FloatFormat;
using sparsesign::Status;
namespace fops = sparsesign::fops;

inline const FloatFormat kFormats[] = {FloatFormat::kFloat16,
                                       FloatFormat::kBFloat16,
                                FloatFormat::kFloat32, FloatFormat::kFloat64};

inline size_t Width(FloatFormat f) {
  return f == FloatFormat::kFloat64 ? 8 : f == FloatFormat::kFloat32 ? 4 : 2;
}
inline const char* Name(FloatFormat f) {
  switch (f) {
    case FloatFormat::kFloat16: return "float16";
    case FloatFormat::kBFloat16: return "bfloat16";
    case FloatFormat::kFloat32: return "float32";
    case FloatFormat::kFloat64: return "float64";
  }
  return "?";
}

inline void Ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  std::fprintf(stderr, "CUDA error %s in %s\n", cudaGetErrorName(e), what);
  std::exit(2);
}

// Device memory with host copies in and out.
struct Dev {
  void* p = nullptr;
  size_t bytes;
  explicit Dev(size_t b, int poison = 0) : bytes(b) {
    Ok(cudaMalloc(&p, std::max<size_t>(b, 16)), "cudaMalloc");
    Ok(cudaMemset(p, poison, std::max<size_t>(b, 16)), "cudaMemset");
  }
  Dev(const void* host, size_t b) : Dev(b) { Put(host); }
  ~Dev() { cudaFree(p); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  void Put(const void* host) {
    if (bytes) Ok(cudaMemcpy(p, host, bytes, cudaMemcpyHostToDevice), "put");
  }
  std::vector<char> Get() const {
    std::vector<char> h(bytes);
    if (bytes) Ok(cudaMemcpy(h.data(), p, bytes, cudaMemcpyDeviceToHost),
                  "get");
    return h;
  }
  template <typename T> T* as() const { return static_cast<T*>(p); }
};

inline uint64_t Mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

inline uint64_t FromDouble(FloatFormat f, double v) {
  switch (f) {
    case FloatFormat::kFloat16: return fops::FloatToHalf(static_cast<float>(v));
    case FloatFormat::kBFloat16:
      return fops::FloatToBF16(static_cast<float>(v));
    case FloatFormat::kFloat32: return fops::BitsOf(static_cast<float>(v));
    case FloatFormat::kFloat64: return fops::BitsOf(v);
  }
  return 0;
}

inline uint64_t SignBit(FloatFormat f) {
  return uint64_t{1} << (Width(f) * 8 - 1);
}

// Raw bits of n elements of a family: random (bell-ish), ties (few
// magnitudes), zero, denormal (exponent 0), inf (some +-inf), sparse.
inline std::vector<char> Make(FloatFormat f, const std::string& family,
                              int64_t n, uint64_t seed) {
  const size_t w = Width(f);
  std::vector<char> out(n * w);
  auto fill = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const uint64_t h = Mix(seed * 0x632BE59BD9B4E019ull + i), h2 = Mix(h);
      const double u = ((h >> 11) & 0xFFFFF) / 1048576.0 +
                       ((h >> 31) & 0xFFFFF) / 1048576.0 +
                       ((h2 >> 11) & 0xFFFFF) / 1048576.0 - 1.5;
      const bool neg = (h2 >> 40) & 1;
      uint64_t bits;
      if (family == "ties") {
        const double vals[] = {0.0, 0.5, 1.0, 2.0};
        bits = FromDouble(f, vals[h2 % 4] * (neg ? -1 : 1));
      } else if (family == "zero") {
        bits = neg ? SignBit(f) : 0;
      } else if (family == "denormal") {
        bits = (h2 % 32) | (neg ? SignBit(f) : 0);
      } else if (family == "inf" && h2 % 97 == 0) {
        bits = FromDouble(f, neg ? -INFINITY : INFINITY);
      } else if (family == "sparse" && h2 % 50 != 0) {
        bits = 0;
      } else {
        bits = FromDouble(f, u * 2.0);
      }
      std::memcpy(out.data() + i * w, &bits, w);
    }
  };
  const int64_t parts = n > (1 << 20) ? 16 : 1;
  std::vector<std::thread> pool;
  for (int64_t p = 0; p < parts; ++p)
    pool.emplace_back(fill, n * p / parts, n * (p + 1) / parts);
  for (auto& t : pool) t.join();
  return out;
}

inline void PutNaN(FloatFormat f, std::vector<char>* x, int64_t at) {
  const uint64_t bits[] = {0x7E00, 0x7FC0, 0x7FC00000u, 0x7FF8000000000000ull};
  std::memcpy(x->data() + at * Width(f), &bits[static_cast<int>(f)], Width(f));
}

// Equal bits, or both NaN (which NaN follows the device: float_ops.h).
inline bool SameValues(FloatFormat f, const std::vector<char>& a,
                const std::vector<char>& b) {
  if (a.size() != b.size()) return false;
  if (std::memcmp(a.data(), b.data(), a.size()) == 0) return true;
  const size_t w = Width(f);
  const uint64_t mag = SignBit(f) - 1;
  const uint64_t inf = FromDouble(f, INFINITY);
  for (size_t i = 0; i < a.size() / w; ++i) {
    uint64_t x = 0, y = 0;
    std::memcpy(&x, a.data() + i * w, w);
    std::memcpy(&y, b.data() + i * w, w);
    if (x != y && !((x & mag) > inf && (y & mag) > inf)) return false;
  }
  return true;
}

inline sparsesign::ParallelRunner Runner(bool threads) {
  if (!threads) return sparsesign::SerialRunner();
  const int count =
      std::max(1u, std::min(32u, std::thread::hardware_concurrency()));
  return [count](int64_t tasks,
                 const std::function<void(int64_t, int64_t)>& fn) {
    std::vector<std::thread> pool;
    const int64_t per = (tasks + count - 1) / count;
    for (int64_t b = 0; b < tasks; b += per)
      pool.emplace_back(fn, b, std::min(tasks, b + per));
    for (auto& t : pool) t.join();
  };
}

// The status and outputs of one call, compared whole.
struct Result {
  Status status;
  bool internal = false;
  std::vector<std::vector<char>> outputs;
};

inline std::string Compare(FloatFormat f, const Result& cpu, const Result& a,
                    const Result& b) {
  if (a.status.ok != b.status.ok || a.status.message != b.status.message ||
      a.outputs.size() != b.outputs.size())
    return "nondeterministic status: '" + a.status.message + "' / '" +
           b.status.message + "'";
  for (size_t i = 0; i < a.outputs.size(); ++i)
    if (!SameValues(f, a.outputs[i], b.outputs[i]) &&
        a.outputs[i] != b.outputs[i])
      return "nondeterministic: output " + std::to_string(i) + " differs";
  if (cpu.status.ok != a.status.ok || cpu.status.message != a.status.message ||
      a.internal)
    return "status differs: cpu='" + cpu.status.message + "' gpu='" +
           a.status.message + "'";
  for (size_t i = 0; i < cpu.outputs.size() && i < a.outputs.size(); ++i)
    if (!SameValues(f, cpu.outputs[i], a.outputs[i]))
      return "output " + std::to_string(i) + " differs";
  return "";
}

}  // namespace util
}  // namespace step_checks

#endif  // TF_SPARSESIGN_CUDA_HARNESS_CHECK_UTIL_H_
