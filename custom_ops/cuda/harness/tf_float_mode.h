// The floating-point mode TensorFlow runs CPU kernels in: denormal operands
// count as zero and denormal results become zero (x86 MXCSR DAZ + FTZ,
// ARM FPCR FZ). The harness and the self-tests compute the CPU references
// of the fused encode and the sparse write under it, as the CPU ops run
// inside TensorFlow; threads started meanwhile inherit it (POSIX).
#ifndef TF_SPARSESIGN_CUDA_HARNESS_TF_FLOAT_MODE_H_
#define TF_SPARSESIGN_CUDA_HARNESS_TF_FLOAT_MODE_H_

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#endif

class TfFloatMode {
 public:
#if defined(__SSE__) || defined(__x86_64__)
  TfFloatMode() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }
  ~TfFloatMode() { _mm_setcsr(saved_); }

 private:
  unsigned saved_;
#elif defined(__aarch64__)
  TfFloatMode() {
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(saved_));
    const unsigned long fz = saved_ | (1ul << 24);
    __asm__ __volatile__("msr fpcr, %0" : : "r"(fz));
  }
  ~TfFloatMode() { __asm__ __volatile__("msr fpcr, %0" : : "r"(saved_)); }

 private:
  unsigned long saved_;
#else
#error "TfFloatMode: unknown CPU (add its flush-to-zero switch)"
#endif
  TfFloatMode(const TfFloatMode&) = delete;
  TfFloatMode& operator=(const TfFloatMode&) = delete;
};

#endif  // TF_SPARSESIGN_CUDA_HARNESS_TF_FLOAT_MODE_H_
