// CPU kernels for RiceEncode / RiceDecode: validate shapes and attributes
// with OP_REQUIRES, then call the plain C++ coder in ../core/rice.cc.
#include "../core/rice.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/util/work_sharder.h"

namespace tensorflow {
namespace {

class RiceEncodeOp : public OpKernel {
 public:
  explicit RiceEncodeOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_elements", &num_elements_));
    OP_REQUIRES(ctx, num_elements_ <= sparsesign::kMaxElements,
                errors::InvalidArgument(
                    "rice_encode: num_elements must be <= 2**30, got ",
                    num_elements_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& codes = ctx->input(0);
    OP_REQUIRES(ctx, codes.dims() == 1,
                errors::InvalidArgument(
                    "rice_encode: codes must be int32 [k], got shape ",
                    codes.shape().DebugString()));
    const int32* in = codes.flat<int32>().data();
    const int64_t k = codes.dim_size(0);
    int64_t num_words = 0;
    sparsesign::Status st =
        sparsesign::RiceEncodedWords(in, k, num_elements_, &num_words);
    OP_REQUIRES(ctx, st.ok, errors::InvalidArgument(st.message));
    Tensor* words = nullptr;
    OP_REQUIRES_OK(ctx,
                   ctx->allocate_output(0, TensorShape({num_words}), &words));
    st = sparsesign::RiceEncode(in, k, num_elements_,
                                words->flat<int32>().data(), num_words);
    OP_REQUIRES(ctx, st.ok, errors::Internal(st.message));
  }

 private:
  int64_t num_elements_ = 0;
};

class RiceDecodeOp : public OpKernel {
 public:
  explicit RiceDecodeOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_elements", &num_elements_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("k", &k_));
    std::string on_invalid;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("on_invalid", &on_invalid));
    drop_ = on_invalid == "drop";
    OP_REQUIRES(ctx, num_elements_ <= sparsesign::kMaxElements,
                errors::InvalidArgument(
                    "rice_decode: num_elements must be <= 2**30, got ",
                    num_elements_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& words = ctx->input(0);
    OP_REQUIRES(ctx, words.dims() == 1 || words.dims() == 2,
                errors::InvalidArgument(
                    "rice_decode: words must be int32 [W] or [M, W], got "
                    "shape ", words.shape().DebugString()));
    const bool batched = words.dims() == 2;
    const int64_t m = batched ? words.dim_size(0) : 1;
    const int64_t w = words.dim_size(words.dims() - 1);
    TensorShape codes_shape({k_}), valid_shape;
    if (batched) {
      codes_shape = TensorShape({m, k_});
      valid_shape = TensorShape({m});
    }
    Tensor* codes = nullptr;
    Tensor* valid = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, codes_shape, &codes));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, valid_shape, &valid));
    const int32* in = words.flat<int32>().data();
    int32* out = codes->flat<int32>().data();
    bool* ok = valid->flat<bool>().data();
    std::vector<std::string> why(m);
    auto decode_rows = [&](int64_t b, int64_t e) {
      for (int64_t row = b; row < e; ++row) {
        const sparsesign::Status st = sparsesign::RiceDecode(
            in + row * w, w, num_elements_, k_, out + row * k_);
        ok[row] = st.ok;
        if (!st.ok) why[row] = st.message;
      }
    };
    auto* pool = ctx->device()->tensorflow_cpu_worker_threads();
    Shard(pool->num_threads, pool->workers, m, /*cost_per_unit=*/8 * (w + k_),
          decode_rows);
    if (drop_) return;
    for (int64_t row = 0; row < m; ++row)
      OP_REQUIRES(ctx, ok[row],
                  errors::InvalidArgument(
                      batched ? "message " + std::to_string(row) + " of " +
                                    std::to_string(m) + ": "
                              : std::string(),
                      why[row]));
  }

 private:
  int64_t num_elements_ = 0;
  int64_t k_ = 0;
  bool drop_ = false;
};

REGISTER_KERNEL_BUILDER(Name("RiceEncode").Device(DEVICE_CPU), RiceEncodeOp);
REGISTER_KERNEL_BUILDER(Name("RiceDecode").Device(DEVICE_CPU), RiceDecodeOp);

}  // namespace
}  // namespace tensorflow
