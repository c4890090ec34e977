// CPU kernels of step_ops.cc. Inputs are validated before any memory is
// read or written.
#define EIGEN_USE_THREADS

#include <atomic>
#include <cmath>
#include <cstring>
#include <string>

#include "../core/step_errors.h"
#include "kernel_checks.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/resource_var.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/kernels/training_op_helpers.h"

namespace tensorflow {
namespace {

using CPUDevice = Eigen::ThreadPoolDevice;

// Entries per parallel task: large enough that a task is worth a thread.
constexpr int64_t kChunk = 1 << 16;

// Counts the entries of x[begin, end) that are not finite, remembering the
// smallest such index in *first. The loop has no early exit so that it
// vectorises: a finite gradient (the normal case) is read at memory speed.
template <typename T>
int64_t CountNonFinite(const T* x, int64_t begin, int64_t end,
                       int64_t* first) {
  int64_t bad = 0;
  for (int64_t i = begin; i < end; ++i) {
    bad += !Eigen::numext::isfinite(x[i]);
  }
  if (bad) {
    for (int64_t i = begin; i < end; ++i) {
      if (!Eigen::numext::isfinite(x[i])) {
        *first = i;
        break;
      }
    }
  }
  return bad;
}

template <typename T>
class CheckFiniteOp : public OpKernel {
 public:
  explicit CheckFiniteOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("message", &message_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const T* data = x.flat<T>().data();
    const int64_t n = x.NumElements();
    const int64_t tasks = (n + kChunk - 1) / kChunk;
    std::atomic<int64_t> bad{0};
    std::atomic<int64_t> first{n};
    sparsesign_checks::PoolRunner(ctx)(tasks, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        int64_t at = n;
        const int64_t count = CountNonFinite(
            data, t * kChunk, std::min(n, (t + 1) * kChunk), &at);
        if (!count) continue;
        bad += count;
        int64_t seen = first.load();
        while (at < seen && !first.compare_exchange_weak(seen, at)) {
        }
      }
    });
    if (bad.load()) {
      const int64_t at = first.load();
      const double value = static_cast<double>(data[at]);
      ctx->CtxFailure(errors::InvalidArgument(sparsesign::NonFiniteError(
          message_, bad.load(), n, at,
          std::isnan(value) ? "nan" : (value > 0 ? "inf" : "-inf"))));
      return;
    }
    ctx->set_output(0, x);
  }

 private:
  std::string message_;
};

template <typename T>
class ScatterSubOp : public OpKernel {
 public:
  explicit ScatterSubOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& indices = ctx->input(1);
    const Tensor& updates = ctx->input(2);
    OP_REQUIRES_OK(ctx,
                   sparsesign_checks::CheckScatterInputs(indices, updates));
    core::RefCountPtr<Var> var;
    OP_REQUIRES_OK(ctx, LookupResource(ctx, HandleFromInput(ctx, 0), &var));
    mutex_lock lock(*var->mu());
    Tensor* tensor = var->tensor();
    OP_REQUIRES_OK(ctx, sparsesign_checks::CheckScatterVariable(
                            *tensor, DataTypeToEnum<T>::v()));
    const int64_t n = tensor->NumElements();
    const int64_t u = indices.NumElements();
    const int32* index = indices.flat<int32>().data();
    for (int64_t i = 0; i < u; ++i) {
      OP_REQUIRES(ctx, index[i] >= 0 && index[i] < n,
                  errors::InvalidArgument(sparsesign::ScatterIndexError(
                      i, index[i], n, tensor->shape().DebugString())));
    }
    OP_REQUIRES_OK(ctx, PrepareToUpdateVariable<CPUDevice, T>(
                            ctx, tensor, var->copy_on_read_mode.load()));
    T* x = tensor->flat<T>().data();
    const T* step = updates.flat<T>().data();
    for (int64_t i = 0; i < u; ++i) x[index[i]] -= step[i];
  }
};

#define REGISTER(T)                                                    \
  REGISTER_KERNEL_BUILDER(                                             \
      Name("SparseSignCheckFinite").Device(DEVICE_CPU).TypeConstraint<T>("T"), \
      CheckFiniteOp<T>);                                               \
  REGISTER_KERNEL_BUILDER(                                             \
      Name("SparseSignScatterSub").Device(DEVICE_CPU).TypeConstraint<T>("T"), \
      ScatterSubOp<T>);
REGISTER(Eigen::half);
REGISTER(bfloat16);
REGISTER(float);
REGISTER(double);
#undef REGISTER

}  // namespace
}  // namespace tensorflow
