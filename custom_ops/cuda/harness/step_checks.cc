// See step_checks.h: the fused encode, scatter_sub and check_finite.
// CPU references: the core's AccumulateEncode (float32, float64), or the
// CPU op's 16-bit add then the core's EncodeInPlace; for scatter_sub and
// check_finite (TensorFlow kernels, not in the core) the loops of
// ../../tf/step_kernels.cc, written out here. The fused encode and the
// write run in TensorFlow's float mode (tf_float_mode.h): the GPU kernels
// flush denormals themselves, the references by the CPU's mode, as the CPU
// ops do inside TensorFlow.
#include "step_checks.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "../../core/step_errors.h"
#include "check_util.h"
#include "sync_calls.h"
#include "tf_float_mode.h"

namespace step_checks {

void CheckPacked(const Plan& p, const Record& rec,
                 std::vector<std::string>* rows);  // packed_checks.cc

namespace {

using namespace util;  // NOLINT: the helpers of this harness
namespace gpu = sparsesign::gpu;
namespace plan = sparsesign::plan;

// The CPU op's 16-bit add (Eigen's arithmetic, float_ops.h checks it).
void AddInPlace16(FloatFormat f, std::vector<char>* m,
                  const std::vector<char>& g) {
  auto* mb = reinterpret_cast<uint16_t*>(m->data());
  const auto* gb = reinterpret_cast<const uint16_t*>(g.data());
  for (size_t i = 0; i < m->size() / 2; ++i)
    mb[i] = f == FloatFormat::kFloat16
                ? fops::Arith<plan::F16Keys>::Add(mb[i], gb[i])
                : fops::Arith<plan::BF16Keys>::Add(mb[i], gb[i]);
}

Result CpuFused(FloatFormat f, std::vector<char> m,
                const std::vector<char>& g, int64_t n, int64_t k,
                bool threads) {
  std::vector<char> codes(4 * k), values(Width(f) * k);
  Result r;
  {
    TfFloatMode mode;
    if (f == FloatFormat::kFloat32 || f == FloatFormat::kFloat64) {
      r.status = sparsesign::AccumulateEncode(
          f, m.data(), g.data(), n, k, reinterpret_cast<int32_t*>(codes.data()),
          values.data(), Runner(threads));
    } else {
      AddInPlace16(f, &m, g);
      r.status = sparsesign::EncodeInPlace(
          f, m.data(), n, k, reinterpret_cast<int32_t*>(codes.data()),
          values.data(), Runner(threads));
    }
  }
  // On error the codes are unspecified; the memory holds the sums.
  r.outputs = r.status.ok ? std::vector<std::vector<char>>{codes, values, m}
                          : std::vector<std::vector<char>>{m};
  return r;
}

Result GpuFused(FloatFormat f, const std::vector<char>& m,
                const std::vector<char>& g, int64_t n, int64_t k,
                int poison) {
  Dev dm(m.data(), m.size()), dg(g.data(), g.size());
  Dev codes(4 * k, poison), values(Width(f) * k, poison ^ 0x33);
  Dev ws(gpu::EncodeWorkspaceBytes(f, n), poison);
  const gpu::Status st = gpu::sync::AccumulateEncode(
      f, dm.p, dg.p, n, k, codes.as<int32_t>(), values.p, ws.p, ws.bytes);
  Result r;
  r.status = st;
  r.internal = st.internal;
  r.outputs = st.ok ? std::vector<std::vector<char>>{codes.Get(), values.Get(),
                                                     dm.Get()}
                    : std::vector<std::vector<char>>{dm.Get()};
  return r;
}

// Memory and gradient families; "cancel": the gradient is -memory.
struct FusedInputs {
  const char* memory;
  const char* gradient;
  bool nan;
};

void CheckFused(const Plan& p, const Record& rec,
                std::vector<std::string>* rows) {
  std::vector<FusedInputs> inputs = {
      {"random", "random", false}, {"zero", "ties", false},
      {"denormal", "denormal", false}, {"random", "random", true}};
  if (!p.quick)
    inputs.insert(inputs.end(), {{"ties", "ties", false},
                                 {"random", "cancel", false},
                                 {"inf", "inf", false},
                                 {"sparse", "random", false}});
  uint64_t seed = 11;
  for (FloatFormat f : kFormats) {
    int cases = 0, fails = 0;
    int64_t top = 0;
    auto run = [&](int64_t n, const FusedInputs& in,
                   std::vector<int64_t> ks) {
      std::vector<char> m = Make(f, in.memory, n, seed++);
      std::vector<char> g = m;
      if (std::string(in.gradient) == "cancel") {
        for (size_t i = 0; i < g.size(); i += Width(f))
          g[i + Width(f) - 1] ^= static_cast<char>(0x80);
      } else {
        g = Make(f, in.gradient, n, seed++);
      }
      if (in.nan && n > 0) PutNaN(f, &g, static_cast<int64_t>(seed % n));
      top = std::max(top, n);
      std::sort(ks.begin(), ks.end());
      ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
      for (int64_t k : ks) {
        if (k < 0 || k > n) continue;
        const Result cpu = CpuFused(f, m, g, n, k, p.threads);
        const std::string why = Compare(f, cpu, GpuFused(f, m, g, n, k, 0xAB),
                                        GpuFused(f, m, g, n, k, 0x5C));
        ++cases;
        fails += !why.empty();
        rec(why.empty(), std::string("accumulate_encode ") + Name(f) + " " +
                             in.memory + "+" + in.gradient +
                             (in.nan ? "+nan" : "") + " n=" +
                             std::to_string(n) + " k=" + std::to_string(k) +
                             ": " + why);
      }
    };
    for (int64_t n : p.sizes)
      for (const FusedInputs& in : inputs)
        run(n, in, p.quick ? std::vector<int64_t>{std::max<int64_t>(1, n / 100)}
                           : std::vector<int64_t>{0, 1, n / 100, n});
    if (p.large_n > 0) run(p.large_n, inputs[0], {p.large_n / 100});
    rows->push_back("| " + std::string(Name(f)) +
                    " | accumulate_encode (memory += g, codes, values, "
                    "memory) | up to " + std::to_string(top) + " | " +
                    std::to_string(cases - fails) + "/" +
                    std::to_string(cases) + " bit-identical |");
  }
}

// ---------------------------------------------------------------- scatter

// x - s as the CPU kernel computes it (run under TfFloatMode).
uint64_t CpuSub(FloatFormat f, uint64_t a, uint64_t b) {
  switch (f) {
    case FloatFormat::kFloat16:
      return fops::Arith<plan::F16Keys>::Sub(static_cast<uint16_t>(a),
                                             static_cast<uint16_t>(b));
    case FloatFormat::kBFloat16:
      return fops::Arith<plan::BF16Keys>::Sub(static_cast<uint16_t>(a),
                                              static_cast<uint16_t>(b));
    case FloatFormat::kFloat32:
      return fops::BitsOf(fops::FloatOf(static_cast<uint32_t>(a)) -
                          fops::FloatOf(static_cast<uint32_t>(b)));
    case FloatFormat::kFloat64:
      return fops::BitsOf(fops::DoubleOf(a) - fops::DoubleOf(b));
  }
  return 0;
}

Result CpuScatter(FloatFormat f, std::vector<char> x, int64_t n,
                  const std::vector<int32_t>& idx,
                  const std::vector<char>& upd) {
  Result r;
  const std::string shape = "[" + std::to_string(n) + "]";
  for (size_t i = 0; i < idx.size(); ++i)
    if (idx[i] < 0 || idx[i] >= n) {
      r.status = Status::Invalid(sparsesign::ScatterIndexError(
          static_cast<int64_t>(i), idx[i], n, shape));
      r.outputs = {x};  // nothing written
      return r;
    }
  const size_t w = Width(f);
  TfFloatMode mode;
  for (size_t i = 0; i < idx.size(); ++i) {
    uint64_t a = 0, b = 0;
    std::memcpy(&a, x.data() + idx[i] * w, w);
    std::memcpy(&b, upd.data() + i * w, w);
    const uint64_t d = CpuSub(f, a, b);
    std::memcpy(x.data() + idx[i] * w, &d, w);
  }
  r.outputs = {x};
  return r;
}

Result GpuScatter(FloatFormat f, const std::vector<char>& x, int64_t n,
                  const std::vector<int32_t>& idx,
                  const std::vector<char>& upd) {
  const int64_t u = static_cast<int64_t>(idx.size());
  Dev dx(x.data(), x.size()), di(idx.data(), 4 * u), du(upd.data(), upd.size());
  Dev ws(gpu::StepWorkspaceBytes(), 0x77);
  Result r;
  const gpu::Status st = gpu::sync::ScatterSub(
      f, dx.p, n, di.as<int32_t>(), du.p, u, "[" + std::to_string(n) + "]",
      ws.p, ws.bytes);
  r.status = st;
  r.internal = st.internal;
  r.outputs = {dx.Get()};  // unchanged on error: checked too
  return r;
}

// Indices: ascending distinct, the same shuffled, random with repeats;
// "bad" puts one out-of-range index (and one more later) in.
std::vector<int32_t> Indices(int64_t n, int64_t u, const std::string& order,
                             std::mt19937_64& rng) {
  std::vector<int32_t> idx;
  if (order == "repeats") {
    for (int64_t i = 0; i < u; ++i)
      idx.push_back(static_cast<int32_t>(rng() % n));
    return idx;
  }
  for (int64_t i = 0; i < n && static_cast<int64_t>(idx.size()) < u; ++i) {
    const int64_t left = u - static_cast<int64_t>(idx.size());
    if (static_cast<int64_t>(rng() % n) < 2 * u || n - i <= left)
      idx.push_back(static_cast<int32_t>(i));
  }
  if (order == "shuffled") std::shuffle(idx.begin(), idx.end(), rng);
  return idx;
}

void CheckScatter(const Plan& p, const Record& rec,
                  std::vector<std::string>* rows) {
  std::mt19937_64 rng(23);
  uint64_t seed = 101;
  for (FloatFormat f : kFormats) {
    int cases = 0, fails = 0;
    int64_t top = 0;
    auto run = [&](int64_t n, int64_t u, const std::string& order,
                   const char* family, int bad) {
      std::vector<int32_t> idx = n > 0 ? Indices(n, u, order, rng)
                                       : std::vector<int32_t>(u, 0);
      if (bad && !idx.empty()) {
        const size_t at = rng() % idx.size();
        idx[at] = bad > 0 ? static_cast<int32_t>(n)
                          : -1 - static_cast<int32_t>(rng() % 5);
        idx[(at + idx.size() / 2) % idx.size()] = -7;
      }
      const std::vector<char> x = Make(f, family, n, seed++);
      const std::vector<char> upd = Make(f, family, idx.size(), seed++);
      top = std::max(top, n);
      const std::string why = Compare(f, CpuScatter(f, x, n, idx, upd),
                                      GpuScatter(f, x, n, idx, upd),
                                      GpuScatter(f, x, n, idx, upd));
      ++cases;
      fails += !why.empty();
      rec(why.empty(), std::string("scatter_sub ") + Name(f) + " " + family +
                           " " + order + (bad ? " bad-index" : "") + " n=" +
                           std::to_string(n) + " u=" +
                           std::to_string(idx.size()) + ": " + why);
    };
    for (int64_t n : p.sizes) {
      run(n, std::max<int64_t>(1, n / 100), "ascending", "random", 0);
      run(n, n / 2, "ascending", "denormal", 0);
      run(n, std::max<int64_t>(1, n / 10), "repeats", "random", 0);
      run(n, std::max<int64_t>(1, n / 10), "ascending", "random", 1);
      if (p.quick) continue;
      run(n, n, "ascending", "ties", 0);
      run(n, std::max<int64_t>(1, n / 10), "shuffled", "random", 0);
      run(n, std::max<int64_t>(1, n / 10), "shuffled", "random", -1);
      run(n, 0, "ascending", "random", 0);
    }
    run(0, 3, "ascending", "random", 1);  // an empty variable
    if (p.large_n > 0)
      run(p.large_n, p.large_n / 100, "ascending", "random", 0);
    rows->push_back("| " + std::string(Name(f)) +
                    " | scatter_sub (in order, repeats, bad indices) | up to " +
                    std::to_string(top) + " | " +
                    std::to_string(cases - fails) + "/" +
                    std::to_string(cases) + " bit-identical |");
  }
}

// ----------------------------------------------------------------- finite

Result CpuFinite(FloatFormat f, const std::vector<char>& x, int64_t n) {
  const size_t w = Width(f);
  const uint64_t mag = SignBit(f) - 1, inf = FromDouble(f, INFINITY);
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < n; ++i) {
    uint64_t b = 0;
    std::memcpy(&b, x.data() + i * w, w);
    if ((b & mag) < inf) continue;
    ++bad;
    if (first < 0) first = i;
  }
  Result r;
  if (bad) {
    uint64_t b = 0;
    std::memcpy(&b, x.data() + first * w, w);
    const char* kind = (b & mag) > inf      ? "nan"
                       : (b & SignBit(f)) ? "-inf"
                                          : "inf";
    r.status = Status::Invalid(
        sparsesign::NonFiniteError("grad of 'v'", bad, n, first, kind));
  }
  return r;
}

Result GpuFinite(FloatFormat f, const std::vector<char>& x, int64_t n) {
  Dev dx(x.data(), x.size()), ws(gpu::StepWorkspaceBytes(), 0x3C);
  const gpu::Status st =
      gpu::sync::CheckFinite(f, dx.p, n, "grad of 'v'", ws.p, ws.bytes);
  Result r;
  r.status = st;
  r.internal = st.internal;
  r.outputs = {};
  return r;
}

void CheckFinite(const Plan& p, const Record& rec,
                 std::vector<std::string>* rows) {
  uint64_t seed = 501;
  for (FloatFormat f : kFormats) {
    int cases = 0, fails = 0;
    int64_t top = 0;
    auto run = [&](int64_t n, const char* family, int nans) {
      std::vector<char> x = Make(f, family, n, seed++);
      for (int j = 0; j < nans && n > 0; ++j)
        PutNaN(f, &x, static_cast<int64_t>(Mix(seed + j) % n));
      top = std::max(top, n);
      const std::string why = Compare(f, CpuFinite(f, x, n), GpuFinite(f, x, n),
                                      GpuFinite(f, x, n));
      ++cases;
      fails += !why.empty();
      rec(why.empty(), std::string("check_finite ") + Name(f) + " " + family +
                           " nans=" + std::to_string(nans) + " n=" +
                           std::to_string(n) + ": " + why);
    };
    for (int64_t n : p.sizes) {
      run(n, "random", 0);
      run(n, "inf", 0);
      run(n, "random", 1);
      if (p.quick) continue;
      run(n, "denormal", 0);
      run(n, "inf", 3);
      run(n, "zero", 2);
    }
    run(0, "random", 0);
    if (p.large_n > 0) run(p.large_n, "inf", 1);
    rows->push_back("| " + std::string(Name(f)) +
                    " | check_finite (count, first index, its kind) | up to " +
                    std::to_string(top) + " | " +
                    std::to_string(cases - fails) + "/" +
                    std::to_string(cases) + " identical |");
  }
}

}  // namespace

std::vector<std::string> CheckStepKernels(const Plan& p, const Record& rec) {
  std::vector<std::string> rows;
  CheckFused(p, rec, &rows);
  CheckScatter(p, rec, &rows);
  CheckFinite(p, rec, &rows);
  CheckPacked(p, rec, &rows);
  return rows;
}

}  // namespace step_checks
