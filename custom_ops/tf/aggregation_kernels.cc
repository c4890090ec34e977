// CPU kernel of the fused error-feedback encode, in place on the memory
// variable. Every input is validated with OP_REQUIRES before any memory is
// touched.
#define EIGEN_USE_THREADS

#include <string>

#include "../core/sparse_sign_core.h"
#include "kernel_checks.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/resource_var.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/kernels/training_op_helpers.h"

namespace tensorflow {
namespace {

using CPUDevice = Eigen::ThreadPoolDevice;
using sparsesign_checks::PoolRunner;

template <typename T>
class SparseSignAccumulateEncodeOp : public OpKernel {
 public:
  explicit SparseSignAccumulateEncodeOp(OpKernelConstruction* ctx)
      : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("k", &k_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("label", &label_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& gradient = ctx->input(1);
    sparsesign::FloatFormat format;
    OP_REQUIRES_OK(ctx, sparsesign_checks::CheckEncodeInput(gradient, k_,
                                                            &format));
    core::RefCountPtr<Var> var;
    OP_REQUIRES_OK(ctx, LookupResource(ctx, HandleFromInput(ctx, 0), &var));
    mutex_lock lock(*var->mu());
    Tensor* memory = var->tensor();
    OP_REQUIRES_OK(ctx, sparsesign_checks::CheckMemory(*memory, gradient,
                                                       Prefix()));
    OP_REQUIRES_OK(ctx, PrepareToUpdateVariable<CPUDevice, T>(
                            ctx, memory, var->copy_on_read_mode.load()));
    Tensor *codes, *values;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({k_}), &codes));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({k_}), &values));
    const int64_t n = gradient.NumElements();
    void* m = const_cast<char*>(memory->tensor_data().data());
    int32* out = codes->flat<int32>().data();
    void* out_values = const_cast<char*>(values->tensor_data().data());
    sparsesign::Status st;
    if (format == sparsesign::FloatFormat::kFloat32 ||
        format == sparsesign::FloatFormat::kFloat64) {
      st = sparsesign::AccumulateEncode(format, m, gradient.tensor_data().data(),
                                        n, k_, out, out_values,
                                        PoolRunner(ctx));
    } else {
      // 16-bit formats add with Eigen's own rounding (as TF's Add does),
      // then select with the residual written in place.
      memory->flat<T>().device(ctx->eigen_device<CPUDevice>()) +=
          gradient.flat<T>();
      st = sparsesign::EncodeInPlace(format, m, n, k_, out, out_values,
                                     PoolRunner(ctx));
    }
    OP_REQUIRES(ctx, st.ok, errors::InvalidArgument(Prefix(), st.message));
  }

 private:
  std::string Prefix() const { return sparsesign_checks::LabelPrefix(label_); }

  int64_t k_ = 0;
  std::string label_;
};

#define REGISTER_ACCUMULATE(T)                                  \
  REGISTER_KERNEL_BUILDER(Name("SparseSignAccumulateEncode")    \
                              .Device(DEVICE_CPU)               \
                              .TypeConstraint<T>("T"),          \
                          SparseSignAccumulateEncodeOp<T>);
REGISTER_ACCUMULATE(Eigen::half);
REGISTER_ACCUMULATE(bfloat16);
REGISTER_ACCUMULATE(float);
REGISTER_ACCUMULATE(double);
#undef REGISTER_ACCUMULATE

}  // namespace
}  // namespace tensorflow
