// CPU emulation stub (see cuda_runtime.h): float -> bfloat16, round to
// nearest even on the upper 16 bits; NaN stays a quiet NaN.
#pragma once
#include <cstdint>
#include <cstring>

struct __nv_bfloat16 { unsigned short bits; };
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u)
    return __nv_bfloat16{static_cast<unsigned short>((u >> 16) | 0x40)};
  u += 0x7FFFu + ((u >> 16) & 1u);
  return __nv_bfloat16{static_cast<unsigned short>(u >> 16)};
}
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.bits; }
