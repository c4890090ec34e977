// CPU kernels: validate every input with OP_REQUIRES, then call the plain
// C++ core (../core) with the intra-op thread pool as its runner.
#include <string>
#include <vector>

#include "../core/sparse_sign_core.h"
#include "kernel_checks.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"

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

// Attributes and input checks shared by the dense and the sparse vote.
class VoteKernel : public OpKernel {
 public:
  explicit VoteKernel(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_elements", &num_elements_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("weighted", &weighted_));
    std::string on_invalid;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("on_invalid", &on_invalid));
    drop_ = on_invalid == "drop";
    OP_REQUIRES_OK(ctx, sparsesign_checks::CheckVoteAttrs(num_elements_));
  }

 protected:
  // Checks the inputs; the weights pointer is null for an unweighted vote.
  Status Inputs(OpKernelContext* ctx, const Tensor** codes,
                const float** weights) const {
    *codes = &ctx->input(0);
    const Tensor& w = ctx->input(1);
    TF_RETURN_IF_ERROR(sparsesign_checks::CheckVoteInputs(**codes, w,
                                                          weighted_));
    *weights = weighted_ ? w.flat<float>().data() : nullptr;
    return OkStatus();
  }

  int64_t num_elements_ = 0;
  bool weighted_ = false;
  bool drop_ = false;
};

class MajorityVoteOp : public VoteKernel {
 public:
  using VoteKernel::VoteKernel;

  void Compute(OpKernelContext* ctx) override {
    const Tensor* codes;
    const float* weights;
    OP_REQUIRES_OK(ctx, Inputs(ctx, &codes, &weights));
    Tensor* votes = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({num_elements_}),
                                             &votes));
    Tensor* dropped = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({}), &dropped));
    int64_t num_dropped = 0;
    const sparsesign::Status st = sparsesign::MajorityVote(
        codes->flat<int32>().data(), codes->dim_size(0), codes->dim_size(1),
        num_elements_, weights, drop_, votes->flat<float>().data(),
        &num_dropped, PoolRunner(ctx));
    OP_REQUIRES(ctx, st.ok, errors::InvalidArgument(st.message));
    dropped->scalar<int32>()() = static_cast<int32>(num_dropped);
  }
};

class SparseMajorityVoteOp : public VoteKernel {
 public:
  using VoteKernel::VoteKernel;

  void Compute(OpKernelContext* ctx) override {
    const Tensor* codes;
    const float* weights;
    OP_REQUIRES_OK(ctx, Inputs(ctx, &codes, &weights));
    std::vector<int32_t> indices;
    std::vector<float> votes;
    int64_t num_dropped = 0;
    const sparsesign::Status st = sparsesign::SparseMajorityVote(
        codes->flat<int32>().data(), codes->dim_size(0), codes->dim_size(1),
        num_elements_, weights, drop_, &indices, &votes, &num_dropped,
        PoolRunner(ctx));
    OP_REQUIRES(ctx, st.ok, errors::InvalidArgument(st.message));
    const int64_t u = static_cast<int64_t>(indices.size());
    Tensor *out_indices, *out_votes, *dropped;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({u}),
                                             &out_indices));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({u}), &out_votes));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({}), &dropped));
    std::copy(indices.begin(), indices.end(),
              out_indices->flat<int32>().data());
    std::copy(votes.begin(), votes.end(), out_votes->flat<float>().data());
    dropped->scalar<int32>()() = static_cast<int32>(num_dropped);
  }
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
REGISTER_KERNEL_BUILDER(Name("SparseMajorityVote").Device(DEVICE_CPU),
                        SparseMajorityVoteOp);

}  // namespace
}  // namespace tensorflow
