// Standalone GPU harness (nvcc only, no TensorFlow):
//   (a) checks sparsesign::gpu::{EncodeAsync, MajorityVoteAsync} bit for bit
//       against the CPU core (custom_ops/core) on many input families and
//       sizes, every GPU call twice (the two runs must agree: determinism),
//       and the step's kernels (fused encode, scatter_sub, check_finite,
//       packed signs: step_checks.h) against their CPU references;
//   (b) times encode against a device-to-device copy of the same bytes,
//       the vote, and the step's kernels each beside its copy, printing
//       markdown tables.
// --quick: a small check set for compute-sanitizer (memcheck, racecheck,
// synccheck), which slows kernels down a hundredfold.
// Build: see Makefile beside this file. Run: ./harness --help
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
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
#include "check_util.h"
#include "step_checks.h"
#include "sync_calls.h"

namespace {

using sparsesign::FloatFormat;
using sparsesign::Status;
using step_checks::util::Name;
using step_checks::util::Runner;
using step_checks::util::Width;

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
  bool quick = false;
  int64_t max_rows = 256;  // largest M for votes
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
    } else if (a == "--max-rows") {
      o.max_rows = std::stoll(next());
    } else if (a == "--quick") {
      o.quick = true;
      o.bench = false;
    } else {
      std::printf(
          "usage: harness [--max-n N] [--check-only|--bench-only|--quick] "
          "[--out DIR] [--reps R] [--max-rows M]\n"
          "  --max-n   largest N for checks and benchmarks (default 1e8;\n"
          "            N=2**30-1 needs ~14 GB of GPU memory for float32)\n"
          "  --quick   a small check set (for compute-sanitizer), no bench\n"
          "  --max-rows  largest M for the votes (default 256)\n"
          "  --out     writes check.md, bench.md and bench.csv there\n");
      std::exit(a == "--help" ? 0 : 2);
    }
  }
  o.max_n = std::clamp<int64_t>(o.max_n, 1, sparsesign::kMaxElements - 1);
  return o;
}

// ------------------------------------------------------------ generation
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
  CUDA_OK(cudaMemcpy(static_cast<char*>(x) + at * Width(f),
                     &bits[static_cast<int>(f)], Width(f),
                     cudaMemcpyHostToDevice));
}

// ---------------------------------------------------------- CPU reference
int64_t CountNonzero(const std::vector<char>& host, FloatFormat f) {
  int64_t nnz = 0;
  const size_t w = Width(f);
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

// One GPU encode into fresh outputs filled with `poison`.
struct GpuEncode {
  sparsesign::gpu::Status status;
  std::vector<char> codes, residual;
};

GpuEncode RunGpuEncode(FloatFormat f, const DeviceBuffer& x, int64_t n,
                       int64_t k, bool with_residual, int poison) {
  const size_t w = Width(f);
  DeviceBuffer codes(sizeof(int32_t) * k);
  DeviceBuffer res(with_residual ? n * w : 0);
  DeviceBuffer ws(sparsesign::gpu::EncodeWorkspaceBytes(f, n));
  CUDA_OK(cudaMemset(codes.p, poison, codes.bytes));
  if (with_residual) CUDA_OK(cudaMemset(res.p, poison ^ 0x66, res.bytes));
  GpuEncode out;
  out.status = sparsesign::gpu::sync::Encode(
      f, x.p, n, k, codes.as<int32_t>(), with_residual ? res.p : nullptr,
      ws.p, ws.bytes);
  if (out.status.ok) {
    out.codes = ToHost(codes.p, codes.bytes);
    if (with_residual) out.residual = ToHost(res.p, res.bytes);
  }
  return out;
}

// One encode case: GPU vs CPU on the same device-generated input, and the
// GPU twice (different poison in the outputs): both runs must agree.
bool CheckEncodeCase(FloatFormat f, const DeviceBuffer& x, int64_t n,
                     const std::vector<char>& host_x, int64_t k,
                     bool with_residual, std::string* detail) {
  const size_t w = Width(f);
  std::vector<int32_t> cpu_codes(k, 0);
  std::vector<char> cpu_res(with_residual ? n * w : 0);
  const Status cpu = sparsesign::Encode(
      f, host_x.data(), n, k, cpu_codes.data(),
      with_residual ? cpu_res.data() : nullptr, Runner(true));
  const GpuEncode a = RunGpuEncode(f, x, n, k, with_residual, 0xAB);
  const GpuEncode b = RunGpuEncode(f, x, n, k, with_residual, 0x5C);
  if (a.status.ok != b.status.ok || a.status.message != b.status.message ||
      a.codes != b.codes || a.residual != b.residual) {
    *detail = "nondeterministic: two GPU runs differ ('" + a.status.message +
              "' / '" + b.status.message + "')";
    return false;
  }
  if (cpu.ok != a.status.ok || cpu.message != a.status.message ||
      a.status.internal) {
    *detail = "status differs: cpu='" + cpu.message + "' gpu='" +
              a.status.message + "'";
    return false;
  }
  if (!cpu.ok) return true;  // same error, outputs unspecified
  if (k && std::memcmp(a.codes.data(), cpu_codes.data(), 4 * k) != 0) {
    int64_t at = 0;
    const int32_t* g = reinterpret_cast<const int32_t*>(a.codes.data());
    while (at < k && g[at] == cpu_codes[at]) ++at;
    *detail = "codes differ first at " + std::to_string(at) + ": gpu " +
              std::to_string(g[at]) + " cpu " + std::to_string(cpu_codes[at]);
    return false;
  }
  if (with_residual &&
      std::memcmp(a.residual.data(), cpu_res.data(), n * w) != 0) {
    *detail = "residual differs";
    return false;
  }
  return true;
}

void CheckEncode(const Options& o, Tally* t) {
  const FloatFormat formats[] = {FloatFormat::kFloat16, FloatFormat::kBFloat16,
                                 FloatFormat::kFloat32, FloatFormat::kFloat64};
  std::vector<int64_t> small;
  const std::vector<int64_t> small_sizes =
      o.quick ? std::vector<int64_t>{1, 4097, 70001}
              : std::vector<int64_t>{1, 2, 5, 1000, 4096, 4097, 65537,
                                     (1 << 20) + 3};
  for (int64_t n : small_sizes)
    if (n <= o.max_n) small.push_back(n);
  std::vector<int64_t> large;
  for (int64_t n : {int64_t{10000000}, int64_t{100000000}})
    if (n <= o.max_n && !o.quick) large.push_back(n);
  // The largest N the wire format allows (2**30 - 1), float32 only, once.
  const int64_t limit_n = o.max_n > 100000000 && !o.quick ? o.max_n : 0;
  uint64_t seed = 1;
  for (FloatFormat f : formats) {
    int f_cases = 0, f_fail = 0;
    auto run = [&](int64_t n, int family, std::vector<int64_t> ks,
                   bool nan) {
      // k = nnz and nnz + 1 (more than the nonzeros) on the sizes where a
      // k near N stays cheap to copy back and compare.
      const bool nnz_ks = !nan && n <= 10000000 && !o.quick;
      size_t free_b = 0, total_b = 0;
      CUDA_OK(cudaMemGetInfo(&free_b, &total_b));
      const int64_t max_k = nnz_ks ? n : *std::max_element(ks.begin(), ks.end());
      const size_t need = n * Width(f) * 2 + 4 * max_k +
                          sparsesign::gpu::EncodeWorkspaceBytes(f, n) + (64 << 20);
      if (need > free_b) {
        t->rows.push_back("| " + std::string(Name(f)) + " | " +
                          kFamilyNames[family] + " | " + std::to_string(n) +
                          " | skipped: needs " + std::to_string(need >> 20) +
                          " MiB of GPU memory |");
        return;
      }
      DeviceBuffer x(n * Width(f));
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
        Record(t, ok, std::string("encode ") + Name(f) + " " +
                          (nan ? "nan" : kFamilyNames[family]) + " n=" +
                          std::to_string(n) + " k=" + std::to_string(k) +
                          (with_res ? " +residual" : "") + ": " + detail);
      }
    };
    for (int64_t n : small)
      for (int fam = 0; fam < kNumFamilies; ++fam) {
        if (o.quick && fam != kRandom && fam != kTies && fam != kSparse)
          continue;
        if (o.quick) {
          run(n, fam, {std::max<int64_t>(1, n / 100)}, false);
        } else {
          run(n, fam, {0, 1, n / 100, n / 1000, n}, false);
        }
        if (fam == kRandom) run(n, fam, {1, std::max<int64_t>(1, n / 100)}, true);
      }
    for (int64_t n : large) {
      run(n, kRandom, {n / 100, n / 1000}, false);
      run(n, kTies, {n / 1000}, false);
      run(n, kInf, {n / 100}, false);
      run(n, kRandom, {n / 100}, true);
    }
    if (limit_n > 0 && f == FloatFormat::kFloat32)
      run(limit_n, kRandom, {limit_n / 100}, false);
    const int64_t top = limit_n > 0 && f == FloatFormat::kFloat32 ? limit_n
                        : large.empty() ? small.back() : large.back();
    t->rows.push_back("| " + std::string(Name(f)) + " | encode (all families) | up to " +
                      std::to_string(top) +
                      " | " + std::to_string(f_cases - f_fail) + "/" +
                      std::to_string(f_cases) + " bit-identical |");
  }
}

// One GPU vote (synchronous), twice comparable: out poisoned first.
struct GpuVote {
  sparsesign::gpu::Status status;
  std::vector<char> out;
  int64_t dropped = -1;
};

GpuVote RunGpuVote(const DeviceBuffer& codes, int64_t m, int64_t k, int64_t n,
                   const DeviceBuffer* weights, bool drop, int poison) {
  DeviceBuffer out(4 * n),
      ws(sparsesign::gpu::VoteWorkspaceBytes(m, n, weights != nullptr));
  CUDA_OK(cudaMemset(out.p, poison, out.bytes));
  GpuVote v;
  v.status = sparsesign::gpu::sync::MajorityVote(
      codes.as<int32_t>(), m, k, n, weights ? weights->as<float>() : nullptr,
      drop, out.as<float>(), &v.dropped, ws.p, ws.bytes);
  if (v.status.ok) v.out = ToHost(out.p, out.bytes);
  return v;
}

// GPU vs CPU core for one set of rows, weighted or not, raise and drop.
void CompareVote(const std::vector<int32_t>& c, const std::vector<float>& wts,
                 int64_t m, int64_t k, int64_t n, const std::string& label,
                 Tally* t, int* cases, int* fails) {
  DeviceBuffer dc(4 * c.size()), dw(4 * wts.size());
  if (!c.empty())
    CUDA_OK(cudaMemcpy(dc.p, c.data(), 4 * c.size(), cudaMemcpyHostToDevice));
  if (!wts.empty())
    CUDA_OK(cudaMemcpy(dw.p, wts.data(), 4 * wts.size(),
                       cudaMemcpyHostToDevice));
  for (int weighted = 0; weighted < (wts.empty() ? 1 : 2); ++weighted) {
    for (int drop = 0; drop < 2; ++drop) {
      std::vector<float> cpu_out(n, 0.0f);
      int64_t cpu_dropped = -1;
      const Status cs = sparsesign::MajorityVote(
          c.data(), m, k, n, weighted ? wts.data() : nullptr, drop,
          cpu_out.data(), &cpu_dropped, Runner(true));
      const GpuVote a = RunGpuVote(dc, m, k, n, weighted ? &dw : nullptr,
                                   drop, 0x7F);
      const GpuVote b = RunGpuVote(dc, m, k, n, weighted ? &dw : nullptr,
                                   drop, 0x11);
      std::string why;
      if (a.status.ok != b.status.ok || a.status.message != b.status.message ||
          a.out != b.out || a.dropped != b.dropped)
        why = "nondeterministic: two GPU runs differ";
      else if (cs.ok != a.status.ok || cs.message != a.status.message ||
               a.status.internal)
        why = "status differs";
      else if (cs.ok && (cpu_dropped != a.dropped ||
                         (n > 0 && std::memcmp(a.out.data(), cpu_out.data(),
                                               4 * n) != 0)))
        why = "output or dropped count differs";
      ++*cases;
      *fails += !why.empty();
      Record(t, why.empty(),
             "vote n=" + std::to_string(n) + " m=" + std::to_string(m) +
                 " k=" + std::to_string(k) + " " + label +
                 (weighted ? " weighted" : "") + (drop ? " drop" : " raise") +
                 ": " + why + " cpu='" + cs.message + "' gpu='" +
                 a.status.message + "'");
    }
  }
}

// Vote: rows from the CPU encoder of random vectors (64 distinct ones at
// most; more rows repeat them with flipped signs), then corruptions.
void CheckVote(const Options& o, Tally* t) {
  std::mt19937_64 rng(77);
  std::normal_distribution<float> normal;
  int cases = 0, fails = 0;
  int64_t largest = 0, most_rows = 0;
  const std::vector<int64_t> sizes =
      o.quick ? std::vector<int64_t>{20000}
              : std::vector<int64_t>{1000, 1000000, 10000000};
  const std::vector<int64_t> row_counts =
      o.quick ? std::vector<int64_t>{1, 8}
              : std::vector<int64_t>{1, 8, 64, 256};
  for (int64_t n : sizes) {
    if (n > o.max_n && n > 1000) continue;
    largest = n;
    for (int64_t m : row_counts) {
      // Many rows only where they matter (N = 1e6), small N stays quick.
      if ((m > 8 && n != 1000000) || m > o.max_rows) continue;
      most_rows = std::max(most_rows, m);
      const int64_t k = std::max<int64_t>(1, n / 100);
      const int64_t distinct = std::min<int64_t>(m, 64);
      std::vector<int32_t> codes(m * k);
      std::vector<float> x(n);
      for (int64_t r = 0; r < distinct; ++r) {
        for (auto& v : x) v = normal(rng) * ((rng() % 50 == 0) ? 0.0f : 1.0f);
        sparsesign::Encode(FloatFormat::kFloat32, x.data(), n, k,
                           codes.data() + r * k, nullptr, Runner(true));
      }
      for (int64_t r = distinct; r < m; ++r)
        for (int64_t j = 0; j < k; ++j) {
          const int32_t c = codes[(r % distinct) * k + j];
          codes[r * k + j] = c < 0 ? c : c ^ static_cast<int32_t>(r & 1);
        }
      std::vector<float> weights(m);
      for (auto& w : weights) w = normal(rng);
      if (m > 2) weights[1] = 0.0f;
      for (int corrupt = 0; corrupt < 7; ++corrupt) {
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
        if (corrupt == 6 && k > 3) {  // a long padding run, then a repeat
          for (int64_t j = 1; j + 1 < k; ++j) row[j] = -1;
          row[k - 1] = row[0];
          label = "repeat-after-padding";
        }
        CompareVote(c, wts, m, k, n, label, t, &cases, &fails);
      }
    }
  }
  // Edge shapes: no rows, empty rows, no elements (every code invalid).
  for (auto [m, k, n] : {std::tuple<int64_t, int64_t, int64_t>{0, 5, 10},
                         {3, 0, 10}, {2, 3, 0}}) {
    std::vector<int32_t> c(m * k, -1);
    if (n == 0 && m * k > 0) c[0] = 0;
    CompareVote(c, {}, m, k, n, "edge", t, &cases, &fails);
  }
  t->rows.push_back("| float32 | vote (M up to " +
                    std::to_string(most_rows) +
                    "; raise/drop, weighted/not, corrupt rows) | up to " +
                    std::to_string(largest) + " | " +
                    std::to_string(cases - fails) + "/" +
                    std::to_string(cases) + " bit-identical |");
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
  double copy_bytes = 0;  // step kernels: the bytes their copy moved
};

// The step's kernels (step_checks.h), each beside its copy.
void BenchStep(const Options& o, std::vector<BenchRow>* rows) {
  const auto timed = step_checks::BenchStepKernels(
      std::min<int64_t>(o.max_n, 100000000), o.reps,
      [](int reps, const std::function<void(int)>& fn) {
        const Timing t = TimeIt(reps, fn);
        return std::array<double, 3>{t.median_ms, t.p10_ms, t.p90_ms};
      });
  for (const step_checks::Timed& s : timed) {
    BenchRow row;
    row.op = s.op;
    row.dtype = s.dtype;
    row.variant = s.failed ? "(FAILED)" : "";
    row.n = s.n;
    row.k = s.k;
    row.m = s.m;
    row.density = s.k ? static_cast<double>(s.k) / s.n : 0;
    row.t = {s.ms[0], s.ms[1], s.ms[2]};
    row.copy_ms = s.copy_ms;
    row.copy_bytes = s.copy_bytes;
    rows->push_back(row);
  }
}

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
    const size_t bytes = s.n * Width(s.f);
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
                  Name(s.f), static_cast<long long>(s.n), need >> 20,
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
    // One checked call first; the timed calls only enqueue (no waiting).
    const sparsesign::gpu::Status first = sparsesign::gpu::sync::Encode(
        s.f, xs[0]->p, s.n, k, codes.as<int32_t>(),
        s.residual ? res.p : nullptr, ws.p, ws.bytes);
    bool failed = !first.ok;
    sparsesign::gpu::EncodeReport* report =
        sparsesign::gpu::sync::PinnedReport<sparsesign::gpu::EncodeReport>();
    BenchRow row;
    row.op = "encode";
    row.dtype = Name(s.f);
    row.variant = s.residual ? "+residual" : "";
    row.n = s.n;
    row.k = k;
    row.density = s.density;
    row.t = TimeIt(reps, [&](int i) {
      const sparsesign::gpu::Status st = sparsesign::gpu::EncodeAsync(
          s.f, xs[i % copies]->p, s.n, k, codes.as<int32_t>(),
          s.residual ? res.p : nullptr, ws.p, ws.bytes, report, 0);
      failed |= !st.ok;
    });
    failed |= !sparsesign::gpu::EncodeOutcome(*report, s.n, k, s.residual).ok;
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
  for (int64_t m : {int64_t{8}, int64_t{64}, int64_t{256}}) {
    if (m > o.max_rows) continue;
    size_t free_b = 0, total_b = 0;
    CUDA_OK(cudaMemGetInfo(&free_b, &total_b));
    const size_t vws_bytes = sparsesign::gpu::VoteWorkspaceBytes(m, n, true);
    if (4 * static_cast<size_t>(m * k + 2 * n) + vws_bytes + (256 << 20) >
        free_b)
      continue;
    DeviceBuffer x(4 * n), codes(4 * m * k), out(4 * n), w(4 * m),
        ews(sparsesign::gpu::EncodeWorkspaceBytes(FloatFormat::kFloat32, n)),
        vws(vws_bytes);
    bool failed = false;
    for (int64_t r = 0; r < m; ++r) {  // real messages: encoded vectors
      Generate(FloatFormat::kFloat32, x.p, n, kRandom, 5000 + r);
      failed |= !sparsesign::gpu::sync::Encode(
                     FloatFormat::kFloat32, x.p, n, k,
                     codes.as<int32_t>() + r * k, nullptr, ews.p, ews.bytes)
                     .ok;
    }
    std::vector<float> hw(m, 0.75f);
    CUDA_OK(cudaMemcpy(w.p, hw.data(), 4 * m, cudaMemcpyHostToDevice));
    sparsesign::gpu::VoteReport* report =
        sparsesign::gpu::sync::PinnedReport<sparsesign::gpu::VoteReport>();
    for (int weighted = 0; weighted < 2; ++weighted) {
      BenchRow row;
      row.op = "vote";
      row.dtype = "int32";
      row.variant = weighted ? "weighted" : "unweighted";
      row.n = n;
      row.k = k;
      row.m = m;
      row.density = 0.01;
      bool vote_failed = failed;
      row.t = TimeIt(o.reps, [&](int) {
        vote_failed |= !sparsesign::gpu::MajorityVoteAsync(
                            codes.as<int32_t>(), m, k, n,
                            weighted ? w.as<float>() : nullptr,
                            out.as<float>(), vws.p, vws.bytes, report, 0)
                            .ok;
      });
      int64_t dropped = 0;
      vote_failed |= !sparsesign::gpu::MajorityVoteOutcome(*report, m, n,
                                                           false, &dropped)
                          .ok;
      if (vote_failed) row.variant += " (FAILED)";
      rows->push_back(row);
    }
  }
}

std::string BenchMarkdown(const std::vector<BenchRow>& rows,
                          const std::string& device) {
  std::ostringstream md;
  char buf[512];
  md << "GPU: " << device << "\n\n"
     << "encode: median of repeated calls (cudaEvents around the enqueued "
        "work, which ends with the small report copy; nothing waits on the "
        "host in between); GB/s = element bytes x N / time (one read of the "
        "input); copy = cudaMemcpy device-to-device of the same bytes in the "
        "same run (it reads and writes them); ratio = copy time / encode time "
        "(= our GB/s over the copy's GB/s, both counting the input bytes once). "
        "Step kernels (accumulate_encode, scatter_sub, check_finite, "
        "packed_signs_*): the copy moves the bytes the kernel "
        "must read (the memory; indices + updates; the tensor; the words; "
        "the rows), GB/s counts them once, copy GB/s counts read + write.\n\n"
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
    } else if (r.copy_bytes > 0) {
      std::snprintf(buf, sizeof(buf),
                    "| %s | %s | %lld | %lld | %lld | %s | %.4f | %.4f | %.4f | %.1f (copied bytes) | %.4f | %.1f | %.2f |\n",
                    r.op.c_str(), r.dtype.c_str(), static_cast<long long>(r.n),
                    static_cast<long long>(r.k), static_cast<long long>(r.m),
                    r.variant.c_str(), r.t.median_ms, r.t.p10_ms, r.t.p90_ms,
                    r.copy_bytes / (r.t.median_ms * 1e6), r.copy_ms,
                    2 * r.copy_bytes / (r.copy_ms * 1e6),
                    r.copy_ms / r.t.median_ms);
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
  csv << "op,dtype,n,k,m,density,variant,median_ms,p10_ms,p90_ms,copy_ms,"
         "copy_bytes\n";
  for (const BenchRow& r : rows)
    csv << r.op << "," << r.dtype << "," << r.n << "," << r.k << "," << r.m
        << "," << r.density << "," << r.variant << "," << r.t.median_ms << ","
        << r.t.p10_ms << "," << r.t.p90_ms << "," << r.copy_ms << ","
        << r.copy_bytes << "\n";
  return csv.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  const sparsesign::gpu::Status driver = sparsesign::gpu::CheckDriver();
  if (!driver.ok) {
    std::fprintf(stderr, "%s\n", driver.message.c_str());
    return 2;
  }
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
    step_checks::Plan plan;
    const std::vector<int64_t> step_sizes =
        o.quick ? std::vector<int64_t>{4097}
                : std::vector<int64_t>{1, 2, 5, 1000, 4097, 65537,
                                       (1 << 20) + 3};
    for (int64_t n : step_sizes)
      if (n <= o.max_n) plan.sizes.push_back(n);
    plan.large_n = o.quick ? 0 : std::min<int64_t>(o.max_n, 10000000);
    if (plan.large_n <= (1 << 20) + 3) plan.large_n = 0;
    plan.quick = o.quick;
    plan.threads = true;
    for (const std::string& row : step_checks::CheckStepKernels(
             plan, [&t](bool ok, const std::string& what) {
               Record(&t, ok, what);
             }))
      t.rows.push_back(row);
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
    BenchStep(o, &rows);
    const std::string md = BenchMarkdown(rows, device);
    WriteFile(o.out_dir + "/bench.md", md);
    WriteFile(o.out_dir + "/bench.csv", BenchCsv(rows));
    std::printf("\n## Benchmark\n\n%s", md.c_str());
  }
  return failures == 0 ? 0 : 1;
}
