// CPU kernels for PackedSignsEncode / PackedSignsVote: validate shapes and
// attributes with OP_REQUIRES, then call the plain C++ core (../core).
#include "../core/packed.h"
#include "kernel_checks.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"

namespace tensorflow {
namespace {

using sparsesign_checks::CheckNumElements;
using sparsesign_checks::PoolRunner;

class PackedSignsEncodeOp : public OpKernel {
 public:
  explicit PackedSignsEncodeOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_elements", &n_));
    OP_REQUIRES_OK(ctx, CheckNumElements("packed_signs_encode", n_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& codes = ctx->input(0);
    OP_REQUIRES_OK(ctx, sparsesign_checks::CheckPackedCodes(codes));
    const int64_t words = sparsesign::PackedWords(n_);
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({words}), &out));
    const sparsesign::Status st = sparsesign::PackSigns(
        codes.flat<int32>().data(), codes.dim_size(0), n_,
        out->flat<int32>().data(), words);
    OP_REQUIRES(ctx, st.ok, errors::InvalidArgument(st.message));
  }

 private:
  int64_t n_ = 0;
};

class PackedSignsVoteOp : public OpKernel {
 public:
  explicit PackedSignsVoteOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_elements", &n_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("weighted", &weighted_));
    OP_REQUIRES_OK(ctx, CheckNumElements("packed_signs_vote", n_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& rows = ctx->input(0);
    const Tensor& weights = ctx->input(1);
    const int64_t words = sparsesign::PackedWords(n_);
    OP_REQUIRES_OK(ctx, sparsesign_checks::CheckPackedRows(
                            rows, weights, n_, words, weighted_));
    const int64_t m = rows.dim_size(0);
    Tensor* votes = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({n_}), &votes));
    const sparsesign::Status st = sparsesign::PackedVote(
        rows.flat<int32>().data(), m, words, n_,
        weighted_ ? weights.flat<float>().data() : nullptr,
        votes->flat<float>().data(), PoolRunner(ctx));
    OP_REQUIRES(ctx, st.ok, errors::InvalidArgument(st.message));
  }

 private:
  int64_t n_ = 0;
  bool weighted_ = false;
};

REGISTER_KERNEL_BUILDER(Name("PackedSignsEncode").Device(DEVICE_CPU),
                        PackedSignsEncodeOp);
REGISTER_KERNEL_BUILDER(Name("PackedSignsVote").Device(DEVICE_CPU),
                        PackedSignsVoteOp);

}  // namespace
}  // namespace tensorflow
