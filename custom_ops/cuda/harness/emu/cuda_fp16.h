// CPU emulation stub (see cuda_runtime.h): float -> half, round to nearest
// even, via GCC's _Float16.
#pragma once
#include <cstdint>
#include <cstring>

struct __half { _Float16 v; };
inline __half __float2half_rn(float f) { return __half{static_cast<_Float16>(f)}; }
inline unsigned short __half_as_ushort(__half h) {
  unsigned short u;
  std::memcpy(&u, &h.v, 2);
  return u;
}
