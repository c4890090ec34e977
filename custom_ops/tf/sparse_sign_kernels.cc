// CPU kernels: validate every input with OP_REQUIRES, then call the plain
// C++ core (../core) with the intra-op thread pool as its runner.
#include "../core/sparse_sign_core.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/lib/core/threadpool.h"

namespace tensorflow {
namespace {

sparsesign::ParallelRunner PoolRunner(OpKernelContext* ctx) {
  thread::ThreadPool* pool =
      ctx->device()->tensorflow_cpu_worker_threads()->workers;
  return [pool](int64_t num_tasks,
                const std::function<void(int64_t, int64_t)>& fn) {
    // Each task is a chunk of >= 64K elements: large cost, one task a unit.
    pool->ParallelFor(num_tasks, /*cost_per_unit=*/1 << 20,
                      [&fn](int64_t b, int64_t e) { fn(b, e); });
  };
}

bool FormatOf(DataType dt, sparsesign::FloatFormat* f) {
  switch (dt) {
    case DT_HALF: *f = sparsesign::FloatFormat::kFloat16; return true;
    case DT_BFLOAT16: *f = sparsesign::FloatFormat::kBFloat16; return true;
    case DT_FLOAT: *f = sparsesign::FloatFormat::kFloat32; return true;
    case DT_DOUBLE: *f = sparsesign::FloatFormat::kFloat64; return true;
    default: return false;
  }
}

template <bool kWithResidual>
class SparseSignEncodeOp : public OpKernel {
 public:
  explicit SparseSignEncodeOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
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
