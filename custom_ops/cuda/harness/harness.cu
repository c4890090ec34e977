// Standalone GPU harness (nvcc only, no TensorFlow):
//   (a) checks sparsesign::gpu::{Encode, MajorityVote} bit for bit against
//       the CPU core (custom_ops/core) on many input families and sizes;
//   (b) times encode against a device-to-device copy of the same bytes,
//       and the vote, printing markdown tables.
// Build: see Makefile beside this file. Run: ./harness --help
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "../../core/sparse_sign_core.h"
#include "../sparse_sign_cuda.h"

namespace {

using sparsesign::FloatFormat;
using sparsesign::Status;

#define CUDA_OK(call)                                                     \
  do {                                                                    \
    const cudaError_t e_ = (call);                                        \
    if (e_ != cudaSuccess) {                                              \
      std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n",                \
                   cudaGetErrorName(e_), __FILE__, __LINE__, #call);      \
      std::exit(2);                                                       \
    }                                                                     \
  } while (0)

// ---------------------------------------------------------------- options
struct Options {
  int64_t max_n = 100000000;       // largest N for checks and benchmarks
  bool check = true;
  bool bench = true;
  std::string out_dir = ".";
  int reps = 20;
};

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value after %s\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--max-n") {
      o.max_n = static_cast<int64_t>(std::stod(next()));
    } else if (a == "--check-only") {
      o.bench = false;
    } else if (a == "--bench-only") {
      o.check = false;
    } else if (a == "--out") {
      o.out_dir = next();
    } else if (a == "--reps") {
      o.reps = std::stoi(next());
    } else {
      std::printf(
          "usage: harness [--max-n N] [--check-only|--bench-only] "
          "[--out DIR] [--reps R]\n"
          "  --max-n   largest N for checks and benchmarks (default 1e8;\n"
          "            N=1e9 needs ~13 GB of GPU memory for float32)\n"
          "  --out     writes check.md, bench.md and bench.csv there\n");
      std::exit(a == "--help" ? 0 : 2);
    }
  }
  o.max_n = std::clamp<int64_t>(o.max_n, 1, sparsesign::kMaxElements - 1);
  return o;
}

// ------------------------------------------------------------ generation
size_t BytesOf(FloatFormat f) {
  switch (f) {
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

const char* NameOf(FloatFormat f) {
  switch (f) {
    case FloatFormat::kFloat16: return "float16";
    case FloatFormat::kBFloat16: return "bfloat16";
    case FloatFormat::kFloat32: return "float32";
    case FloatFormat::kFloat64: return "float64";
  }
  return "?";
}

enum Family { kRandom, kTies, kZero, kEqual, kInf, kDenormal, kSparse,
              kNegZero, kNumFamilies };
const char* kFamilyNames[] = {"random", "ties",   "all-zero", "all-equal",
                              "+-inf",  "denormal", "sparse", "neg-zero"};

__device__ __forceinline__ uint64_t Mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Writes raw bits of the value; `fmt` selects the format.
template <typename Bits>
__device__ __forceinline__ Bits FromDouble(double v, int fmt) {
  if (fmt == 0) return static_cast<Bits>(__half_as_ushort(__float2half_rn(static_cast<float>(v))));
  if (fmt == 1) return static_cast<Bits>(__bfloat16_as_ushort(__float2bfloat16_rn(static_cast<float>(v))));
  if (fmt == 2) return static_cast<Bits>(__float_as_uint(static_cast<float>(v)));
  return static_cast<Bits>(__double_as_longlong(v));
}

template <typename Bits>
__global__ void GenerateKernel(Bits* x, int64_t n, int family, int fmt,
                               uint64_t seed) {
  constexpr int kWidth = sizeof(Bits) * 8;
  const Bits sign = static_cast<Bits>(Bits(1) << (kWidth - 1));
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const uint64_t h = Mix(seed * 0x632BE59BD9B4E019ull + i);
    const uint64_t h2 = Mix(h);
    const double u1 = ((h >> 11) + 1) * (1.0 / 9007199254740992.0);
    const double u2 = (h2 >> 11) * (1.0 / 9007199254740992.0);
    const double normal = sqrt(-2.0 * log(u1)) * cospi(2.0 * u2);
    const bool neg = (h2 & 1) != 0;
    double v;
    switch (family) {
      case kRandom: v = normal; break;
      case kTies: {
        const double vals[] = {0.0, 0.5, 1.0, 2.0, 3.0};
        v = vals[h2 % 5] * (neg ? -1.0 : 1.0);
        break;
      }
      case kZero: v = 0.0; break;
      case kEqual: v = neg ? -1.5 : 1.5; break;
      case kInf:
        v = (h2 % 997 == 0) ? (neg ? -INFINITY : INFINITY) : normal;
        break;
      case kDenormal: {  // exponent bits zero, random small mantissa
        const Bits mant = static_cast<Bits>((h2 >> 8) % 32);
        x[i] = neg ? static_cast<Bits>(mant | sign) : mant;
        continue;
      }
      case kSparse: v = (h2 % 2003 == 0) ? normal : 0.0; break;
      default:  // kNegZero: mostly -0.0, a few values
        v = (h2 % 101 == 0) ? normal : -0.0;
        break;
    }
    x[i] = FromDouble<Bits>(v, fmt);
  }
}

void Generate(FloatFormat f, void* x, int64_t n, int family, uint64_t seed) {
  if (n == 0) return;
  const unsigned grid = static_cast<unsigned>(
      std::min<int64_t>((n + 255) / 256, 4096));
  const int fmt = static_cast<int>(f);
  switch (f) {
    case FloatFormat::kFloat16:
    case FloatFormat::kBFloat16:
      GenerateKernel<uint16_t><<<grid, 256>>>(static_cast<uint16_t*>(x), n, family,
                                    fmt, seed);
      break;
    case FloatFormat::kFloat32:
      GenerateKernel<uint32_t><<<grid, 256>>>(static_cast<uint32_t*>(x), n, family,
                                    fmt, seed);
      break;
    case FloatFormat::kFloat64:
      GenerateKernel<uint64_t><<<grid, 256>>>(static_cast<uint64_t*>(x), n, family,
                                    fmt, seed);
      break;
  }
  CUDA_OK(cudaGetLastError());
}

// Writes a quiet NaN at element `at`.
void PutNaN(FloatFormat f, void* x, int64_t at) {
  const uint64_t bits[] = {0x7E00, 0x7FC0, 0x7FC00000u, 0x7FF8000000000000ull};
  CUDA_OK(cudaMemcpy(static_cast<char*>(x) + at * BytesOf(f),
                     &bits[static_cast<int>(f)], BytesOf(f),
                     cudaMemcpyHostToDevice));
}

// ---------------------------------------------------------- CPU reference
sparsesign::ParallelRunner ThreadRunner() {
  const int threads =
      std::max(1u, std::min(32u, std::thread::hardware_concurrency()));
  return [threads](int64_t tasks,
                   const std::function<void(int64_t, int64_t)>& fn) {
    std::vector<std::thread> pool;
    const int64_t per = (tasks + threads - 1) / threads;
    for (int64_t b = 0; b < tasks; b += per)
      pool.emplace_back(fn, b, std::min(tasks, b + per));
    for (auto& t : pool) t.join();
  };
}

int64_t CountNonzero(const std::vector<char>& host, FloatFormat f) {
  int64_t nnz = 0;
  const size_t w = BytesOf(f);
  const int64_t n = static_cast<int64_t>(host.size() / w);
  for (int64_t i = 0; i < n; ++i) {
    uint64_t b = 0;
    std::memcpy(&b, host.data() + i * w, w);
    b &= (w == 8) ? 0x7FFFFFFFFFFFFFFFull : (uint64_t{1} << (w * 8 - 1)) - 1;
    nnz += b != 0;
  }
  return nnz;
}

// ------------------------------------------------------------ device RAII
struct DeviceBuffer {
  void* p = nullptr;
  size_t bytes = 0;
  explicit DeviceBuffer(size_t b) : bytes(b) {
    CUDA_OK(cudaMalloc(&p, std::max<size_t>(b, 16)));
  }
  ~DeviceBuffer() { cudaFree(p); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <typename T> T* as() const { return static_cast<T*>(p); }
};

std::vector<char> ToHost(const void* d, size_t bytes) {
  std::vector<char> h(bytes);
  if (bytes) CUDA_OK(cudaMemcpy(h.data(), d, bytes, cudaMemcpyDeviceToHost));
  return h;
}

// --------------------------------------------------------------- checking
struct Tally {
  int cases = 0, failures = 0;
  std::vector<std::string> rows;  // markdown rows
  std::vector<std::string> fails;
};

void Record(Tally* t, bool ok, const std::string& what) {
  ++t->cases;
  if (!ok) {
    ++t->failures;
    t->fails.push_back(what);
    std::fprintf(stderr, "FAIL %s\n", what.c_str());
  }
}

// One encode case: GPU vs CPU on the same device-generated input.
bool CheckEncodeCase(FloatFormat f, const DeviceBuffer& x, int64_t n,
                     const std::vector<char>& host_x, int64_t k,
                     bool with_residual, std::string* detail) {
  const size_t w = BytesOf(f);
  std::vector<int32_t> cpu_codes(k, 0);
  std::vector<char> cpu_res(with_residual ? n * w : 0);
  const Status cpu = sparsesign::Encode(
      f, host_x.data(), n, k, cpu_codes.data(),
      with_residual ? cpu_res.data() : nullptr, ThreadRunner());

  DeviceBuffer codes(sizeof(int32_t) * k);
  DeviceBuffer res(with_residual ? n * w : 0);
  DeviceBuffer ws(sparsesign::gpu::EncodeWorkspaceBytes(f, n));
  CUDA_OK(cudaMemset(codes.p, 0xAB, codes.bytes));  // poison
  if (with_residual) CUDA_OK(cudaMemset(res.p, 0xCD, res.bytes));
  const Status gpu = sparsesign::gpu::Encode(
      f, x.p, n, k, codes.as<int32_t>(), with_residual ? res.p : nullptr,
      ws.p, ws.bytes, 0);
  if (cpu.ok != gpu.ok || cpu.message != gpu.message) {
    *detail = "status differs: cpu='" + cpu.message + "' gpu='" +
              gpu.message + "'";
    return false;
  }
  if (!cpu.ok) return true;  // same error, outputs unspecified
  const std::vector<char> g_codes = ToHost(codes.p, codes.bytes);
  if (k && std::memcmp(g_codes.data(), cpu_codes.data(), 4 * k) != 0) {
    int64_t at = 0;
    const int32_t* g = reinterpret_cast<const int32_t*>(g_codes.data());
    while (at < k && g[at] == cpu_codes[at]) ++at;
    *detail = "codes differ first at " + std::to_string(at) + ": gpu " +
              std::to_string(g[at]) + " cpu " + std::to_string(cpu_codes[at]);
    return false;
  }
  if (with_residual) {
    const std::vector<char> g_res = ToHost(res.p, res.bytes);
    if (std::memcmp(g_res.data(), cpu_res.data(), n * w) != 0) {
      *detail = "residual differs";
      return false;
    }
  }
  return true;
}

void CheckEncode(const Options& o, Tally* t) {
  const FloatFormat formats[] = {FloatFormat::kFloat16, FloatFormat::kBFloat16,
                                 FloatFormat::kFloat32, FloatFormat::kFloat64};
  std::vector<int64_t> small;
  for (int64_t n : {int64_t{1}, int64_t{2}, int64_t{5}, int64_t{1000},
                    int64_t{4096}, int64_t{4097}, int64_t{65537},
                    int64_t{(1 << 20) + 3}})
    if (n <= o.max_n) small.push_back(n);
  std::vector<int64_t> large;
  for (int64_t n : {int64_t{10000000}, int64_t{100000000},
                    int64_t{1000000000}})
    if (n <= o.max_n) large.push_back(n);
  if (o.max_n > 1000000 && std::find(large.begin(), large.end(), o.max_n) ==
                               large.end() && o.max_n > (1 << 20) + 3)
    large.push_back(o.max_n);
  uint64_t seed = 1;
  for (FloatFormat f : formats) {
    int f_cases = 0, f_fail = 0;
    auto run = [&](int64_t n, int family, std::vector<int64_t> ks,
                   bool nan) {
      // k = nnz and nnz + 1 (more than the nonzeros) on the sizes where a
      // k near N stays cheap to copy back and compare.
      const bool nnz_ks = !nan && n <= 10000000;
      size_t free_b = 0, total_b = 0;
      CUDA_OK(cudaMemGetInfo(&free_b, &total_b));
      const int64_t max_k = nnz_ks ? n : *std::max_element(ks.begin(), ks.end());
      const size_t need = n * BytesOf(f) * 2 + 4 * max_k +
                          sparsesign::gpu::EncodeWorkspaceBytes(f, n) + (64 << 20);
      if (need > free_b) {
        t->rows.push_back("| " + std::string(NameOf(f)) + " | " +
                          kFamilyNames[family] + " | " + std::to_string(n) +
                          " | skipped: needs " + std::to_string(need >> 20) +
                          " MiB of GPU memory |");
        return;
      }
      DeviceBuffer x(n * BytesOf(f));
      Generate(f, x.p, n, family, seed++);
      if (nan) PutNaN(f, x.p, static_cast<int64_t>((seed * 7919) % n));
      const std::vector<char> host_x = ToHost(x.p, x.bytes);
      std::vector<int64_t> all = ks;
      if (nnz_ks) {
        const int64_t nnz = CountNonzero(host_x, f);
        all.push_back(nnz);
        all.push_back(std::min(n, nnz + 1));  // more than the nonzeros
      }
      std::sort(all.begin(), all.end());
      all.erase(std::unique(all.begin(), all.end()), all.end());
      int residual_toggle = 0;
      for (int64_t k : all) {
        if (k < 0 || k > n) continue;
        std::string detail;
        const bool with_res = (residual_toggle++ % 2) == 0;
        const bool ok = CheckEncodeCase(f, x, n, host_x, k, with_res, &detail);
        ++f_cases;
        f_fail += !ok;
        Record(t, ok, std::string("encode ") + NameOf(f) + " " +
                          (nan ? "nan" : kFamilyNames[family]) + " n=" +
                          std::to_string(n) + " k=" + std::to_string(k) +
                          (with_res ? " +residual" : "") + ": " + detail);
      }
    };
    for (int64_t n : small)
      for (int fam = 0; fam < kNumFamilies; ++fam) {
        run(n, fam, {0, 1, n / 100, n / 1000, n}, false);
        if (fam == kRandom) run(n, fam, {1, std::max<int64_t>(1, n / 100)}, true);
      }
    const bool wide = f == FloatFormat::kFloat32 || f == FloatFormat::kFloat16;
    for (int64_t n : large) {
      if (n > 100000000 && !wide) continue;  // 1e9 only for f32/f16
      run(n, kRandom, {n / 100, n / 1000}, false);
      run(n, kTies, {n / 1000}, false);
      if (n <= 100000000) {
        run(n, kInf, {n / 100}, false);
        run(n, kRandom, {n / 100}, true);
      }
    }
    t->rows.push_back("| " + std::string(NameOf(f)) + " | encode (all families) | up to " +
                      std::to_string(large.empty() ? small.back() : large.back()) +
                      " | " + std::to_string(f_cases - f_fail) + "/" +
                      std::to_string(f_cases) + " bit-identical |");
  }
}

// Vote: rows from the CPU encoder of random vectors, then corruptions.
void CheckVote(const Options& o, Tally* t) {
  std::mt19937_64 rng(77);
  std::normal_distribution<float> normal;
  int cases = 0, fails = 0;
  int64_t largest = 0;
  for (int64_t n : {int64_t{1000}, int64_t{1000000}, int64_t{10000000}}) {
    if (n > o.max_n && n > 1000) continue;
    largest = n;
    for (int64_t m : {int64_t{1}, int64_t{8}, int64_t{64}}) {
      if (n >= 10000000 && m > 8) continue;  // keep host time small
      const int64_t k = std::max<int64_t>(1, n / 100);
      std::vector<int32_t> codes(m * k);
      std::vector<float> x(n);
      for (int64_t r = 0; r < m; ++r) {
        for (auto& v : x) v = normal(rng) * ((rng() % 50 == 0) ? 0.0f : 1.0f);
        sparsesign::Encode(FloatFormat::kFloat32, x.data(), n, k,
                           codes.data() + r * k, nullptr, ThreadRunner());
      }
      std::vector<float> weights(m);
      for (auto& w : weights) w = normal(rng);
      if (m > 2) weights[1] = 0.0f;
      for (int corrupt = 0; corrupt < 6; ++corrupt) {
        std::vector<int32_t> c = codes;
        std::vector<float> wts = weights;
        const int64_t r = m > 1 ? 1 + static_cast<int64_t>(rng() % (m - 1)) : 0;
        int32_t* row = c.data() + r * k;
        std::string label = "clean";
        if (corrupt == 1) { row[k / 2] = -3; label = "code<-1"; }
        if (corrupt == 2) { row[k - 1] = static_cast<int32_t>(n << 1); label = "index>=n"; }
        if (corrupt == 3 && k > 1) { std::swap(row[0], row[1]); label = "unsorted"; }
        if (corrupt == 4) { row[0] = -1; label = "interior-pad"; }  // valid
        if (corrupt == 5) { wts[r] = INFINITY; label = "inf-weight"; }
        DeviceBuffer dc(4 * c.size()), dw(4 * m), dout(4 * n),
            dws(sparsesign::gpu::VoteWorkspaceBytes(m));
        CUDA_OK(cudaMemcpy(dc.p, c.data(), 4 * c.size(), cudaMemcpyHostToDevice));
        CUDA_OK(cudaMemcpy(dw.p, wts.data(), 4 * m, cudaMemcpyHostToDevice));
        for (int weighted = 0; weighted < 2; ++weighted) {
          for (int drop = 0; drop < 2; ++drop) {
            std::vector<float> cpu_out(n, 0.0f);
            int64_t cpu_dropped = -1, gpu_dropped = -1;
            const Status cs = sparsesign::MajorityVote(
                c.data(), m, k, n, weighted ? wts.data() : nullptr, drop,
                cpu_out.data(), &cpu_dropped, ThreadRunner());
            CUDA_OK(cudaMemset(dout.p, 0x7F, dout.bytes));  // poison
            const Status gs = sparsesign::gpu::MajorityVote(
                dc.as<int32_t>(), m, k, n, weighted ? dw.as<float>() : nullptr,
                drop, dout.as<float>(), &gpu_dropped, dws.p, dws.bytes, 0);
            bool ok = cs.ok == gs.ok && cs.message == gs.message;
            if (ok && cs.ok) {
              const std::vector<char> g = ToHost(dout.p, dout.bytes);
              ok = std::memcmp(g.data(), cpu_out.data(), 4 * n) == 0 &&
                   cpu_dropped == gpu_dropped;
            }
            ++cases;
            fails += !ok;
            Record(t, ok, "vote n=" + std::to_string(n) + " m=" +
                              std::to_string(m) + " " + label +
                              (weighted ? " weighted" : "") +
                              (drop ? " drop" : " raise") + ": cpu='" +
                              cs.message + "' gpu='" + gs.message + "'");
          }
        }
      }
    }
  }
  // Edge shapes: no rows, empty rows, no elements (every code invalid).
  for (auto [m, k, n] : {std::tuple<int64_t, int64_t, int64_t>{0, 5, 10},
                         {3, 0, 10}, {2, 3, 0}}) {
    std::vector<int32_t> c(m * k, -1);
    if (n == 0 && m * k > 0) c[0] = 0;
    DeviceBuffer dc(4 * c.size()), dout(4 * n),
        dws(sparsesign::gpu::VoteWorkspaceBytes(m));
    if (!c.empty())
      CUDA_OK(cudaMemcpy(dc.p, c.data(), 4 * c.size(), cudaMemcpyHostToDevice));
    for (int drop = 0; drop < 2; ++drop) {
      std::vector<float> cpu_out(n, 0.0f);
      int64_t cd = -1, gd = -1;
      const Status cs = sparsesign::MajorityVote(c.data(), m, k, n, nullptr,
                                                 drop, cpu_out.data(), &cd,
                                                 ThreadRunner());
      const Status gs = sparsesign::gpu::MajorityVote(
          dc.as<int32_t>(), m, k, n, nullptr, drop, dout.as<float>(), &gd,
          dws.p, dws.bytes, 0);
      bool ok = cs.ok == gs.ok && cs.message == gs.message &&
                (!cs.ok || cd == gd);
      if (ok && cs.ok && n > 0) {
        const std::vector<char> g = ToHost(dout.p, dout.bytes);
        ok = std::memcmp(g.data(), cpu_out.data(), 4 * n) == 0;
      }
      ++cases;
      fails += !ok;
      Record(t, ok, "vote edge m=" + std::to_string(m) + " k=" +
                        std::to_string(k) + " n=" + std::to_string(n));
    }
  }
  t->rows.push_back("| float32 | vote (raise/drop, weighted/not, corrupt rows) | up to " +
                    std::to_string(largest) + " | " +
                    std::to_string(cases - fails) + "/" + std::to_string(cases) +
                    " bit-identical |");
}

// -------------------------------------------------------------- benchmark
struct Timing {
  double median_ms = 0, p10_ms = 0, p90_ms = 0;
};

template <typename Fn>
Timing TimeIt(int reps, Fn&& fn) {
  cudaEvent_t a, b;
  CUDA_OK(cudaEventCreate(&a));
  CUDA_OK(cudaEventCreate(&b));
  for (int i = 0; i < 3; ++i) fn(i);  // warm-up
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    CUDA_OK(cudaEventRecord(a));
    fn(i);
    CUDA_OK(cudaEventRecord(b));
    CUDA_OK(cudaEventSynchronize(b));
    float t = 0;
    CUDA_OK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) { return ms[static_cast<size_t>(q * (ms.size() - 1))]; };
  return {at(0.5), at(0.1), at(0.9)};
}

struct BenchRow {
  std::string op, dtype, variant;
  int64_t n = 0, k = 0, m = 0;
  double density = 0;
  Timing t;
  double copy_ms = 0;
};

void BenchEncode(const Options& o, std::vector<BenchRow>* rows) {
  struct Spec { FloatFormat f; int64_t n; double density; bool residual; };
  std::vector<Spec> specs;
  for (int64_t n : {int64_t{1000000}, int64_t{10000000}, int64_t{100000000},
                    int64_t{1000000000}})
    for (double d : {0.01, 0.001})
      if (n <= o.max_n) specs.push_back({FloatFormat::kFloat32, n, d, false});
  const int64_t mid = std::min<int64_t>(o.max_n, 100000000);
  specs.push_back({FloatFormat::kFloat32, mid, 0.01, true});
  specs.push_back({FloatFormat::kFloat16, mid, 0.01, false});
  specs.push_back({FloatFormat::kBFloat16, mid, 0.01, false});
  specs.push_back({FloatFormat::kFloat64, mid, 0.01, false});
  for (const Spec& s : specs) {
    const size_t bytes = s.n * BytesOf(s.f);
    // Rotate inputs so that small sizes are not served from L2.
    const int copies = static_cast<int>(std::clamp<int64_t>(
        (int64_t{512} << 20) / static_cast<int64_t>(bytes), 1, 64));
    const int64_t k = static_cast<int64_t>(std::ceil(s.density * s.n));
    size_t free_b = 0, total_b = 0;
    CUDA_OK(cudaMemGetInfo(&free_b, &total_b));
    const size_t need = bytes * (copies + 1 + (s.residual ? 1 : 0)) + 4 * k +
                        sparsesign::gpu::EncodeWorkspaceBytes(s.f, s.n) +
                        (256 << 20);
    if (need > free_b) {
      std::printf("skip encode %s N=%lld: needs %zu MiB, %zu MiB free\n",
                  NameOf(s.f), static_cast<long long>(s.n), need >> 20,
                  free_b >> 20);
      continue;
    }
    std::vector<DeviceBuffer*> xs;
    for (int c = 0; c < copies; ++c) {
      xs.push_back(new DeviceBuffer(bytes));
      Generate(s.f, xs.back()->p, s.n, kRandom, 1000 + c);
    }
    DeviceBuffer dst(bytes), codes(4 * k),
        ws(sparsesign::gpu::EncodeWorkspaceBytes(s.f, s.n));
    DeviceBuffer res(s.residual ? bytes : 0);
    const int reps = s.n >= 1000000000 ? std::max(3, o.reps / 4) : o.reps;
    bool failed = false;
    BenchRow row;
    row.op = "encode";
    row.dtype = NameOf(s.f);
    row.variant = s.residual ? "+residual" : "";
    row.n = s.n;
    row.k = k;
    row.density = s.density;
    row.t = TimeIt(reps, [&](int i) {
      const Status st = sparsesign::gpu::Encode(
          s.f, xs[i % copies]->p, s.n, k, codes.as<int32_t>(),
          s.residual ? res.p : nullptr, ws.p, ws.bytes, 0);
      failed |= !st.ok;
    });
    const Timing copy = TimeIt(reps, [&](int i) {
      CUDA_OK(cudaMemcpyAsync(dst.p, xs[i % copies]->p, bytes,
                              cudaMemcpyDeviceToDevice));
    });
    row.copy_ms = copy.median_ms;
    if (failed) row.variant += " (FAILED)";
    rows->push_back(row);
    for (auto* p : xs) delete p;
  }
}

void BenchVote(const Options& o, std::vector<BenchRow>* rows) {
  const int64_t n = std::min<int64_t>(o.max_n, 100000000);
  const int64_t k = std::max<int64_t>(1, n / 100);
  for (int64_t m : {int64_t{8}, int64_t{64}}) {
    size_t free_b = 0, total_b = 0;
    CUDA_OK(cudaMemGetInfo(&free_b, &total_b));
    if (static_cast<size_t>(4 * (m * k + 2 * n) + (256 << 20)) > free_b) continue;
    DeviceBuffer x(4 * n), codes(4 * m * k), out(4 * n), w(4 * m),
        ews(sparsesign::gpu::EncodeWorkspaceBytes(FloatFormat::kFloat32, n)),
        vws(sparsesign::gpu::VoteWorkspaceBytes(m));
    for (int64_t r = 0; r < m; ++r) {  // real messages: encoded vectors
      Generate(FloatFormat::kFloat32, x.p, n, kRandom, 5000 + r);
      sparsesign::gpu::Encode(FloatFormat::kFloat32, x.p, n, k,
                              codes.as<int32_t>() + r * k, nullptr, ews.p,
                              ews.bytes, 0);
    }
    std::vector<float> hw(m, 0.75f);
    CUDA_OK(cudaMemcpy(w.p, hw.data(), 4 * m, cudaMemcpyHostToDevice));
    for (int weighted = 0; weighted < 2; ++weighted) {
      BenchRow row;
      row.op = "vote";
      row.dtype = "int32";
      row.variant = weighted ? "weighted" : "unweighted";
      row.n = n;
      row.k = k;
      row.m = m;
      row.density = 0.01;
      int64_t dropped = 0;
      row.t = TimeIt(o.reps, [&](int) {
        sparsesign::gpu::MajorityVote(codes.as<int32_t>(), m, k, n,
                                      weighted ? w.as<float>() : nullptr,
                                      false, out.as<float>(), &dropped, vws.p,
                                      vws.bytes, 0);
      });
      rows->push_back(row);
    }
  }
}

std::string BenchMarkdown(const std::vector<BenchRow>& rows,
                          const std::string& device) {
  std::ostringstream md;
  char buf[512];
  md << "GPU: " << device << "\n\n"
     << "encode: median of repeated calls (cudaEvents, includes the one status "
        "read-back); GB/s = element bytes x N / time (one read of the "
        "input); copy = cudaMemcpy device-to-device of the same bytes in the "
        "same run (it reads and writes them); ratio = copy time / encode time "
        "(= our GB/s over the copy's GB/s, both counting the input bytes once).\n\n"
     << "| op | dtype | N | k | M | variant | median ms | p10 ms | p90 ms | GB/s | copy ms | copy GB/s | ratio vs copy |\n"
     << "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const BenchRow& r : rows) {
    const double bytes = r.op == "encode"
        ? static_cast<double>(r.n) * (r.dtype == "float64" ? 8 : r.dtype == "float32" ? 4 : 2)
        : 4.0 * r.m * r.k;
    const double gbs = bytes / (r.t.median_ms * 1e6);
    if (r.op == "encode") {
      std::snprintf(buf, sizeof(buf),
                    "| encode | %s | %lld | %lld | - | %s | %.4f | %.4f | %.4f | %.1f | %.4f | %.1f | %.2f |\n",
                    r.dtype.c_str(), static_cast<long long>(r.n),
                    static_cast<long long>(r.k), r.variant.c_str(),
                    r.t.median_ms, r.t.p10_ms, r.t.p90_ms, gbs, r.copy_ms,
                    bytes / (r.copy_ms * 1e6), r.copy_ms / r.t.median_ms);
    } else {
      std::snprintf(buf, sizeof(buf),
                    "| vote | %s | %lld | %lld | %lld | %s | %.4f | %.4f | %.4f | %.1f (codes) | - | - | - |\n",
                    r.dtype.c_str(), static_cast<long long>(r.n),
                    static_cast<long long>(r.k), static_cast<long long>(r.m),
                    r.variant.c_str(), r.t.median_ms, r.t.p10_ms, r.t.p90_ms,
                    gbs);
    }
    md << buf;
  }
  return md.str();
}

std::string BenchCsv(const std::vector<BenchRow>& rows) {
  std::ostringstream csv;
  csv << "op,dtype,n,k,m,density,variant,median_ms,p10_ms,p90_ms,copy_ms\n";
  for (const BenchRow& r : rows)
    csv << r.op << "," << r.dtype << "," << r.n << "," << r.k << "," << r.m
        << "," << r.density << "," << r.variant << "," << r.t.median_ms << ","
        << r.t.p10_ms << "," << r.t.p90_ms << "," << r.copy_ms << "\n";
  return csv.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  cudaDeviceProp prop;
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  const std::string device = std::string(prop.name) + " (sm_" +
                             std::to_string(prop.major) +
                             std::to_string(prop.minor) + ", " +
                             std::to_string(prop.multiProcessorCount) + " SMs)";
  std::printf("device: %s\n", device.c_str());
  int failures = 0;
  if (o.check) {
    const auto t0 = std::chrono::steady_clock::now();
    Tally t;
    CheckEncode(o, &t);
    CheckVote(o, &t);
    const double secs = std::chrono::duration<double>(
        std::chrono::steady_clock::now() - t0).count();
    std::ostringstream md;
    md << "## Correctness: GPU vs CPU core (bit for bit)\n\n"
       << "GPU: " << device << "; " << t.cases << " cases, " << t.failures
       << " failures, " << secs << " s\n\n"
       << "| dtype | what | N | result |\n|---|---|---|---|\n";
    for (const auto& r : t.rows) md << r << "\n";
    for (const auto& f : t.fails) md << "\nFAIL " << f;
    md << "\n";
    WriteFile(o.out_dir + "/check.md", md.str());
    std::printf("%s", md.str().c_str());
    failures = t.failures;
  }
  if (o.bench) {
    std::vector<BenchRow> rows;
    BenchEncode(o, &rows);
    BenchVote(o, &rows);
    const std::string md = BenchMarkdown(rows, device);
    WriteFile(o.out_dir + "/bench.md", md);
    WriteFile(o.out_dir + "/bench.csv", BenchCsv(rows));
    std::printf("\n## Benchmark\n\n%s", md.c_str());
  }
  return failures == 0 ? 0 : 1;
}
