// The one check the GPU kernels need before they can run at all: the NVIDIA
// driver supports the CUDA version they were built with. CUDA's minor
// version compatibility lets a driver of the same major version run them
// (a CUDA 12.8 build on a 12.2 driver), but not an older major (a CUDA 13
// build needs driver >= 580; a 550 driver stops at 12.4): then every launch
// fails with cudaErrorInsufficientDriver, so say it once, clearly, first.
#include <cuda_runtime.h>

#include <string>

#include "sparse_sign_cuda.h"

namespace sparsesign {
namespace gpu {
namespace {

std::string CudaVersionText(int v) {  // 12040 -> "12.4"
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}

}  // namespace

Status CheckDriver() {
  int driver = 0;
  const cudaError_t err = cudaDriverGetVersion(&driver);
  const std::string built = CudaVersionText(CUDART_VERSION);
  const std::string fix =
      " Fix: update the NVIDIA driver, or rebuild the op library with a "
      "CUDA toolkit the driver supports (NVCC=/path/to/that/nvcc python -m "
      "tf_sparsesign build --force), or without GPU kernels "
      "(TF_SPARSESIGN_DISABLE_CUDA=1 python -m tf_sparsesign build --force).";
  if (err != cudaSuccess || driver == 0)
    return Status::Internal(
        "tf_sparsesign GPU kernels: no usable NVIDIA driver found (the "
        "kernels were built with CUDA " + built + ")." + fix);
  if (driver / 1000 < CUDART_VERSION / 1000)
    return Status::Internal(
        "tf_sparsesign GPU kernels were built with CUDA " + built +
        " but the NVIDIA driver supports CUDA " + CudaVersionText(driver) +
        " at most; CUDA " + std::to_string(CUDART_VERSION / 1000) +
        " needs a newer driver." + fix);
  return Status::Ok();
}

}  // namespace gpu
}  // namespace sparsesign
