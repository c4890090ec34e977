// GPU kernels: validate every input with OP_REQUIRES (same checks and texts
// as the CPU kernels in sparse_sign_kernels.cc), then call the CUDA
// launchers (../cuda/sparse_sign_cuda.h) on the op's stream. Built only
// when TensorFlow is a CUDA build and nvcc is found (see _build.py), which
// defines GOOGLE_CUDA; otherwise this file compiles to nothing.
#if GOOGLE_CUDA

#define EIGEN_USE_GPU

#include <algorithm>
#include <string>

#include "../core/sparse_sign_core.h"
#include "kernel_checks.h"
#include "../cuda/sparse_sign_cuda.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace tensorflow {
namespace {

cudaStream_t StreamOf(OpKernelContext* ctx) {
  return ctx->eigen_gpu_device().stream();
}

// Scratch memory from TF's allocator, freed when the op finishes.
Status AllocateWorkspace(OpKernelContext* ctx, size_t bytes, Tensor* t) {
  return ctx->allocate_temp(
      DT_UINT8, TensorShape({static_cast<int64_t>(std::max<size_t>(bytes, 1))}),
      t);
}

template <bool kWithResidual>
class SparseSignEncodeGpuOp : public OpKernel {
 public:
  explicit SparseSignEncodeGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("k", &k_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    sparsesign::FloatFormat format;
    OP_REQUIRES_OK(ctx, sparsesign_checks::CheckEncodeInput(x, k_, &format));
    const int64_t n = x.NumElements();
    Tensor* codes = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({k_}), &codes));
    void* residual = nullptr;
    if (kWithResidual) {
      Tensor* r = nullptr;
      OP_REQUIRES_OK(ctx, ctx->allocate_output(1, x.shape(), &r));
      residual = const_cast<char*>(r->tensor_data().data());
    }
    if (n == 0) return;  // k == 0: nothing to write
    Tensor workspace;
    OP_REQUIRES_OK(ctx, AllocateWorkspace(
                            ctx, sparsesign::gpu::EncodeWorkspaceBytes(format, n),
                            &workspace));
    const sparsesign::Status st = sparsesign::gpu::Encode(
        format, x.tensor_data().data(), n, k_, codes->flat<int32>().data(),
        residual, workspace.flat<uint8>().data(), workspace.NumElements(),
        StreamOf(ctx));
    OP_REQUIRES(ctx, st.ok, errors::InvalidArgument(st.message));
  }

 private:
  int64_t k_ = 0;
};

class MajorityVoteGpuOp : public OpKernel {
 public:
  explicit MajorityVoteGpuOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_elements", &num_elements_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("weighted", &weighted_));
    std::string on_invalid;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("on_invalid", &on_invalid));
    drop_ = on_invalid == "drop";
    OP_REQUIRES_OK(ctx, sparsesign_checks::CheckVoteAttrs(num_elements_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& codes = ctx->input(0);
    const Tensor& weights = ctx->input(1);
    OP_REQUIRES_OK(ctx, sparsesign_checks::CheckVoteInputs(codes, weights,
                                                         weighted_));
    const int64_t m = codes.dim_size(0), k = codes.dim_size(1);
    Tensor* votes = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({num_elements_}),
                                             &votes));
    Tensor* dropped = nullptr;  // HostMemory: written on the host below
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({}), &dropped));
    Tensor workspace;
    OP_REQUIRES_OK(ctx, AllocateWorkspace(
                            ctx, sparsesign::gpu::VoteWorkspaceBytes(m),
                            &workspace));
    int64_t num_dropped = 0;
    const sparsesign::Status st = sparsesign::gpu::MajorityVote(
        codes.flat<int32>().data(), m, k, num_elements_,
        weighted_ ? weights.flat<float>().data() : nullptr, drop_,
        votes->flat<float>().data(), &num_dropped,
        workspace.flat<uint8>().data(), workspace.NumElements(),
        StreamOf(ctx));
    OP_REQUIRES(ctx, st.ok, errors::InvalidArgument(st.message));
    dropped->scalar<int32>()() = static_cast<int32>(num_dropped);
  }

 private:
  int64_t num_elements_ = 0;
  bool weighted_ = false;
  bool drop_ = false;
};

#define REGISTER_ENCODE_GPU(T)                                        \
  REGISTER_KERNEL_BUILDER(                                            \
      Name("SparseSignEncode").Device(DEVICE_GPU).TypeConstraint<T>("T"), \
      SparseSignEncodeGpuOp<false>);                                  \
  REGISTER_KERNEL_BUILDER(Name("SparseSignEncodeWithResidual")        \
                              .Device(DEVICE_GPU)                     \
                              .TypeConstraint<T>("T"),                \
                          SparseSignEncodeGpuOp<true>);
REGISTER_ENCODE_GPU(Eigen::half);
REGISTER_ENCODE_GPU(bfloat16);
REGISTER_ENCODE_GPU(float);
REGISTER_ENCODE_GPU(double);
#undef REGISTER_ENCODE_GPU

REGISTER_KERNEL_BUILDER(
    Name("MajorityVote").Device(DEVICE_GPU).HostMemory("num_dropped"),
    MajorityVoteGpuOp);

}  // namespace
}  // namespace tensorflow

#endif  // GOOGLE_CUDA
