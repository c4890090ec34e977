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
#include "../cuda/sparse_sign_cuda.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace tensorflow {
namespace {

bool FormatOf(DataType dt, sparsesign::FloatFormat* f) {
  switch (dt) {
    case DT_HALF: *f = sparsesign::FloatFormat::kFloat16; return true;
    case DT_BFLOAT16: *f = sparsesign::FloatFormat::kBFloat16; return true;
    case DT_FLOAT: *f = sparsesign::FloatFormat::kFloat32; return true;
    case DT_DOUBLE: *f = sparsesign::FloatFormat::kFloat64; return true;
    default: return false;
  }
}

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
    OP_REQUIRES(ctx, FormatOf(x.dtype(), &format),
                errors::InvalidArgument(
                    "sparse_sign_encode: x must be float16, bfloat16, float32 "
                    "or float64, got ", DataTypeString(x.dtype())));
    const int64_t n = x.NumElements();
    OP_REQUIRES(ctx, n < sparsesign::kMaxElements,
                errors::InvalidArgument(
                    "sparse_sign_encode: input has ", n,
                    " elements; the limit is 2**30 - 1 = ",
                    sparsesign::kMaxElements - 1,
                    " (codes are int32: (index << 1) | sign)"));
    OP_REQUIRES(ctx, k_ >= 0 && k_ <= n,
                errors::InvalidArgument("sparse_sign_encode: k must satisfy "
                                        "0 <= k <= N = ", n, ", got k = ", k_,
                                        " for x of shape ",
                                        x.shape().DebugString()));
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
    OP_REQUIRES(ctx, num_elements_ <= sparsesign::kMaxElements,
                errors::InvalidArgument(
                    "majority_vote: num_elements must be <= 2**30, got ",
                    num_elements_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& codes = ctx->input(0);
    const Tensor& weights = ctx->input(1);
    OP_REQUIRES(ctx, codes.dims() == 2,
                errors::InvalidArgument(
                    "majority_vote: codes must be int32 [M, k], got shape ",
                    codes.shape().DebugString()));
    const int64_t m = codes.dim_size(0), k = codes.dim_size(1);
    OP_REQUIRES(ctx, weights.dims() == 1,
                errors::InvalidArgument("majority_vote: weights must be a "
                                        "vector, got shape ",
                                        weights.shape().DebugString()));
    const int64_t expect_w = weighted_ ? m : 0;
    OP_REQUIRES(ctx, weights.dim_size(0) == expect_w,
                errors::InvalidArgument(
                    "majority_vote: weights must have shape [", expect_w,
                    "] (one per row of codes", weighted_ ? "" : ", or none",
                    "), got ", weights.shape().DebugString()));
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
