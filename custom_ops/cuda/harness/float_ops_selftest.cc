// float_ops.h against what the CPU kernels really compute: Eigen's half and
// bfloat16 (TensorFlow's headers, built with the op library's flags) and
// native float/double, all under the FTZ + DAZ mode TensorFlow sets on the
// threads that run CPU kernels. Every float16 and bfloat16 value against
// a few hundred second operands (edge values and random bit patterns), both
// operations; float32/float64 on random bits biased to denormals. NaN results
// compare as NaN (which NaN follows the device's arithmetic, see
// float_ops.h). Built by tests/test_cuda_compile.py with
//   g++ -std=c++17 -O2 $(TF compile flags) float_ops_selftest.cc
#include <xmmintrin.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "../float_ops.h"
#include "Eigen/Core"

namespace {

using sparsesign::fops::Arith;
namespace plan = sparsesign::plan;

int64_t g_cases = 0, g_failures = 0;

// The expected values are computed in TensorFlow's mode (flush-to-zero and
// denormals-are-zero); float_ops.h is run in the default mode, so that it
// must flush by itself.
const unsigned kDefaultCsr = _mm_getcsr();
const unsigned kTfCsr = kDefaultCsr | 0x8040;

template <typename Bits>
bool SameOrBothNaN(Bits a, Bits b, Bits mag, Bits inf) {
  return a == b || ((a & mag) > inf && (b & mag) > inf);
}

template <typename Bits>
void Expect(Bits got, Bits want, Bits mag, Bits inf, const char* what,
            uint64_t x, uint64_t y) {
  ++g_cases;
  if (SameOrBothNaN(got, want, mag, inf)) return;
  if (++g_failures <= 20)
    std::fprintf(stderr, "FAIL %s(%#llx, %#llx): got %#llx want %#llx\n", what,
                 static_cast<unsigned long long>(x),
                 static_cast<unsigned long long>(y),
                 static_cast<unsigned long long>(got),
                 static_cast<unsigned long long>(want));
}

// Second operands: zeros, denormals, the smallest/largest normals, ones,
// infinities, NaN, then random bit patterns.
std::vector<uint16_t> Operands16(std::mt19937_64& rng) {
  std::vector<uint16_t> v = {0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF,
                             0x0400, 0x8400, 0x3C00, 0xBC00, 0x7BFF, 0xFBFF,
                             0x7C00, 0xFC00, 0x7E00, 0x0080, 0x8080, 0x007F,
                             0x3F80, 0xBF80, 0x7F7F, 0xFF7F, 0x7F80, 0xFF80,
                             0x7FC0};
  while (v.size() < 400) v.push_back(static_cast<uint16_t>(rng()));
  return v;
}

template <typename K, typename E>
void Check16(const char* name, std::mt19937_64& rng) {
  const std::vector<uint16_t> others = Operands16(rng);
  for (uint32_t a = 0; a < 0x10000; ++a) {
    for (uint16_t b : others) {
      // Volatile in and out: the arithmetic stays between the mode
      // switches (the compiler does not model the FPU mode).
      _mm_setcsr(kTfCsr);
      volatile uint16_t va = static_cast<uint16_t>(a), vb = b;
      const E ea = Eigen::numext::bit_cast<E>(static_cast<uint16_t>(va));
      const E eb = Eigen::numext::bit_cast<E>(static_cast<uint16_t>(vb));
      E diff = ea;
      diff -= eb;
      volatile uint16_t vs = Eigen::numext::bit_cast<uint16_t>(E(ea + eb));
      volatile uint16_t vd = Eigen::numext::bit_cast<uint16_t>(diff);
      _mm_setcsr(kDefaultCsr);
      const uint16_t want_sum = vs, want_diff = vd;
      const uint16_t x = static_cast<uint16_t>(a);
      Expect<uint16_t>(Arith<K>::Add(x, b), want_sum, K::kMagMask, K::kInfKey,
                       name, a, b);
      Expect<uint16_t>(Arith<K>::Sub(x, b), want_diff, K::kMagMask,
                       K::kInfKey, name, a, b);
    }
  }
}

template <typename K, typename F>
void CheckWide(const char* name, std::mt19937_64& rng) {
  using Bits = typename K::Bits;
  auto draw = [&]() -> Bits {
    Bits b = static_cast<Bits>(rng());
    switch (rng() % 4) {
      case 0: return b & static_cast<Bits>(K::kMagMask >> 8);  // denormal
      case 1: return b & static_cast<Bits>(~(K::kInfKey >> 1));  // small
      default: return b;
    }
  };
  for (int i = 0; i < 4000000; ++i) {
    const Bits a = draw(), b = draw();
    F fa, fb;
    std::memcpy(&fa, &a, sizeof(F));
    std::memcpy(&fb, &b, sizeof(F));
    _mm_setcsr(kTfCsr);
    volatile F va = fa, vb = fb;
    volatile F sum = va + vb, diff = va - vb;
    _mm_setcsr(kDefaultCsr);
    Bits want_sum, want_diff;
    const F s = sum, d = diff;
    std::memcpy(&want_sum, &s, sizeof(F));
    std::memcpy(&want_diff, &d, sizeof(F));
    Expect<Bits>(Arith<K>::Add(a, b), want_sum, K::kMagMask, K::kInfKey, name,
                 a, b);
    Expect<Bits>(Arith<K>::Sub(a, b), want_diff, K::kMagMask, K::kInfKey,
                 name, a, b);
  }
}

}  // namespace

int main() {
  std::mt19937_64 rng(7);
  Check16<plan::F16Keys, Eigen::half>("float16", rng);
  Check16<plan::BF16Keys, Eigen::bfloat16>("bfloat16", rng);
  CheckWide<plan::F32Keys, float>("float32", rng);
  CheckWide<plan::F64Keys, double>("float64", rng);
  std::printf("float_ops_selftest: %lld cases, %lld failures\n",
              static_cast<long long>(g_cases),
              static_cast<long long>(g_failures));
  return g_failures == 0 ? 0 : 1;
}
