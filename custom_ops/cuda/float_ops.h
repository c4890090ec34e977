// The arithmetic of the CPU kernels, bit for bit, written once for the GPU
// kernels, the CPU emulation and the tests (`__host__ __device__`, plain
// integer and float operations: no CUDA half types, no FPU modes).
//
// What the CPU kernels compute, inside TensorFlow:
// * TensorFlow runs CPU kernels with denormals flushed (x86 MXCSR FTZ and
//   DAZ): a denormal operand counts as a signed zero, a denormal result
//   becomes a signed zero. Float32 and float64 here do the same explicitly
//   (the GPU kernels are built without -ftz, which would not cover float64).
// * float16 and bfloat16 go through float32 as Eigen does on the CPU
//   (half(float(a) + float(b)), its software conversions: round to nearest
//   even, NaN -> quiet NaN). float32 has more than 2p + 2 bits for both, so
//   this is also the correctly rounded 16-bit sum.
// Which NaN a NaN result is (its payload and sign) follows the device's
// float arithmetic: x86 keeps an operand's NaN, a GPU returns its canonical
// NaN. Only a step that fails on a NaN sees one.
#ifndef TF_SPARSESIGN_CUDA_FLOAT_OPS_H_
#define TF_SPARSESIGN_CUDA_FLOAT_OPS_H_

#include <cstdint>
#include <cstring>

#include "select_plan.h"

namespace sparsesign {
namespace fops {

SS_HD uint32_t BitsOf(float v) {
  uint32_t b;
  memcpy(&b, &v, 4);
  return b;
}
SS_HD float FloatOf(uint32_t b) {
  float v;
  memcpy(&v, &b, 4);
  return v;
}
SS_HD uint64_t BitsOf(double v) {
  uint64_t b;
  memcpy(&b, &v, 8);
  return b;
}
SS_HD double DoubleOf(uint64_t b) {
  double v;
  memcpy(&v, &b, 8);
  return v;
}

// A denormal (or zero) becomes the zero of its sign: FTZ and DAZ.
SS_HD float Flush(float v) {
  const uint32_t b = BitsOf(v);
  return (b & 0x7F800000u) == 0 ? FloatOf(b & 0x80000000u) : v;
}
SS_HD double Flush(double v) {
  const uint64_t b = BitsOf(v);
  return (b & 0x7FF0000000000000ull) == 0
             ? DoubleOf(b & 0x8000000000000000ull)
             : v;
}

// a + b and a - b as a CPU kernel computes them under TensorFlow.
template <typename F>
SS_HD F CpuAdd(F a, F b) {
  return Flush(static_cast<F>(Flush(a) + Flush(b)));
}
template <typename F>
SS_HD F CpuSub(F a, F b) {
  return Flush(static_cast<F>(Flush(a) - Flush(b)));
}

// float16 <-> float32, Eigen's software conversions (Half.h).
SS_HD float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  if (exp == 0x1F) return FloatOf(sign | 0x7F800000u | (mant << 13));
  if (exp != 0) return FloatOf(sign | ((exp + 112u) << 23) | (mant << 13));
  if (mant == 0) return FloatOf(sign);
  uint32_t e = 113;  // a denormal: normalise (exact)
  while ((mant & 0x400u) == 0) {
    mant <<= 1;
    --e;
  }
  return FloatOf(sign | (e << 23) | ((mant & 0x3FFu) << 13));
}

SS_HD uint16_t FloatToHalf(float ff) {
  uint32_t f = BitsOf(ff);
  const uint32_t sign = f & 0x80000000u;
  f ^= sign;
  uint16_t o;
  if (f >= (127u + 16u) << 23) {  // Inf or NaN after rounding
    o = f > 0x7F800000u ? 0x7E00 : 0x7C00;
  } else if (f < 113u << 23) {  // a float16 denormal or zero
    // Align the 10 mantissa bits at the bottom of a float: the float add
    // rounds to nearest even. The sum is a normal float, so no FPU mode
    // changes it (a denormal f gives 0 with or without DAZ).
    const uint32_t magic = ((127u - 15u) + (23u - 10u) + 1u) << 23;
    o = static_cast<uint16_t>(BitsOf(FloatOf(f) + FloatOf(magic)) - magic);
  } else {
    const uint32_t odd = (f >> 13) & 1u;
    f += 0xC8000FFFu;  // exponent rebias and rounding bias
    f += odd;
    o = static_cast<uint16_t>(f >> 13);
  }
  return static_cast<uint16_t>(o | (sign >> 16));
}

// bfloat16 <-> float32, Eigen's conversions (BFloat16.h).
SS_HD float BF16ToFloat(uint16_t h) {
  return FloatOf(static_cast<uint32_t>(h) << 16);
}

SS_HD uint16_t FloatToBF16(float ff) {
  const uint32_t f = BitsOf(ff);
  if ((f & 0x7FFFFFFFu) > 0x7F800000u)
    return (f & 0x80000000u) ? 0xFFC0 : 0x7FC0;
  return static_cast<uint16_t>((f + 0x7FFFu + ((f >> 16) & 1u)) >> 16);
}

// The arithmetic type of each key format (plan::F16Keys, ...) and its
// conversions from and to the raw bits.
template <typename K>
struct Convert;

template <>
struct Convert<plan::F16Keys> {
  static SS_HD float In(uint16_t b) { return HalfToFloat(b); }
  static SS_HD uint16_t Out(float v) { return FloatToHalf(v); }
};
template <>
struct Convert<plan::BF16Keys> {
  static SS_HD float In(uint16_t b) { return BF16ToFloat(b); }
  static SS_HD uint16_t Out(float v) { return FloatToBF16(v); }
};
template <>
struct Convert<plan::F32Keys> {
  static SS_HD float In(uint32_t b) { return FloatOf(b); }
  static SS_HD uint32_t Out(float v) { return BitsOf(v); }
};
template <>
struct Convert<plan::F64Keys> {
  static SS_HD double In(uint64_t b) { return DoubleOf(b); }
  static SS_HD uint64_t Out(double v) { return BitsOf(v); }
};

// a + b and a - b on raw bits of one key format, as the CPU kernels do.
template <typename K>
struct Arith {
  using Bits = typename K::Bits;
  static SS_HD Bits Add(Bits a, Bits b) {
    return Convert<K>::Out(CpuAdd(Convert<K>::In(a), Convert<K>::In(b)));
  }
  static SS_HD Bits Sub(Bits a, Bits b) {
    return Convert<K>::Out(CpuSub(Convert<K>::In(a), Convert<K>::In(b)));
  }
};

// NaN or an infinity: every exponent bit set.
template <typename K>
SS_HD bool NotFinite(typename K::Bits bits) {
  return (bits & K::kMagMask) >= K::kInfKey;
}

}  // namespace fops
}  // namespace sparsesign

#endif  // TF_SPARSESIGN_CUDA_FLOAT_OPS_H_
