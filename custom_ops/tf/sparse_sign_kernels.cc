// CPU kernels: validate every input with OP_REQUIRES, then call the plain
// C++ core (../core) with the intra-op thread pool as its runner.
#include "../core/sparse_sign_core.h"
#include "kernel_checks.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/lib/core/threadpool.h"

namespace tensorflow {
namespace {

using sparsesign_checks::PoolRunner;

template <bool kWithResidual>
class SparseSignEncodeOp : public OpKernel {
 public:
  explicit SparseSignEncodeOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
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
    const sparsesign::Status st = sparsesign::Encode(
        format, x.tensor_data().data(), n, k_, codes->flat<int32>().data(),
        residual, PoolRunner(ctx));
    OP_REQUIRES(ctx, st.ok, errors::InvalidArgument(st.message));
  }

 private:
  int64_t k_ = 0;
};

class MajorityVoteOp : public OpKernel {
 public:
  explicit MajorityVoteOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
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
    Tensor* dropped = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({}), &dropped));
    int64_t num_dropped = 0;
    const sparsesign::Status st = sparsesign::MajorityVote(
        codes.flat<int32>().data(), m, k, num_elements_,
        weighted_ ? weights.flat<float>().data() : nullptr, drop_,
        votes->flat<float>().data(), &num_dropped, PoolRunner(ctx));
    OP_REQUIRES(ctx, st.ok, errors::InvalidArgument(st.message));
    dropped->scalar<int32>()() = static_cast<int32>(num_dropped);
  }

 private:
  int64_t num_elements_ = 0;
  bool weighted_ = false;
  bool drop_ = false;
};

#define REGISTER_ENCODE(T)                                           \
  REGISTER_KERNEL_BUILDER(                                           \
      Name("SparseSignEncode").Device(DEVICE_CPU).TypeConstraint<T>("T"), \
      SparseSignEncodeOp<false>);                                    \
  REGISTER_KERNEL_BUILDER(Name("SparseSignEncodeWithResidual")       \
                              .Device(DEVICE_CPU)                    \
                              .TypeConstraint<T>("T"),               \
                          SparseSignEncodeOp<true>);
REGISTER_ENCODE(Eigen::half);
REGISTER_ENCODE(bfloat16);
REGISTER_ENCODE(float);
REGISTER_ENCODE(double);
#undef REGISTER_ENCODE

REGISTER_KERNEL_BUILDER(Name("MajorityVote").Device(DEVICE_CPU),
                        MajorityVoteOp);

}  // namespace
}  // namespace tensorflow
