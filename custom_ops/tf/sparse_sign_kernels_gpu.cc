// GPU kernels: validate every input with OP_REQUIRES (same checks and texts
// as the CPU kernels in sparse_sign_kernels.cc), then enqueue the CUDA
// launchers (../cuda/sparse_sign_cuda.h) on the op's stream. Built only
// when TensorFlow is a CUDA build and nvcc is found (see ops/_build.py),
// which defines GOOGLE_CUDA; otherwise this file compiles to nothing.
//
// The kernels are asynchronous and never wait for the GPU (as TF's own
// where_op): the launcher's small report (NaN found, rows dropped) is copied
// into pinned host memory from allocate_temp, and the op finishes in the
// stream's event callback (EventMgr::ThenExecute), which reads the report,
// sets the status and calls `done`. Errors of the caller's input are
// InvalidArgument; CUDA failures and broken invariants are Internal; a
// driver too old for the toolkit fails the kernel's construction.
#if GOOGLE_CUDA

#define EIGEN_USE_GPU

#include <algorithm>
#include <functional>
#include <string>
#include <utility>

#include "../core/sparse_sign_core.h"
#include "../cuda/sparse_sign_cuda.h"
#include "gpu_kernel_util.h"
#include "kernel_checks.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"

// Found by the Python side (ops/_library.py) with dlsym: this library has
// the GPU kernels (this file and step_kernels_gpu.cc) registered.
extern "C" __attribute__((visibility("default"))) int
tf_sparsesign_gpu_kernels() {
  return 1;
}

namespace tensorflow {
namespace {

using sparsesign_gpu::AllocateReport;
using sparsesign_gpu::AllocateWorkspace;
using sparsesign_gpu::Finisher;
using sparsesign_gpu::FinisherOf;
using sparsesign_gpu::RequireDriver;
using sparsesign_gpu::StreamOf;
using sparsesign_gpu::ThenFinish;
using sparsesign_gpu::ToTfStatus;

template <bool kWithResidual>
class SparseSignEncodeGpuOp : public AsyncOpKernel {
 public:
  explicit SparseSignEncodeGpuOp(OpKernelConstruction* ctx)
      : AsyncOpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("k", &k_));
    RequireDriver(ctx);
  }

  void ComputeAsync(OpKernelContext* ctx, DoneCallback done) override {
    const Tensor& x = ctx->input(0);
    sparsesign::FloatFormat format;
    OP_REQUIRES_OK_ASYNC(
        ctx, sparsesign_checks::CheckEncodeInput(x, k_, &format), done);
    const int64_t n = x.NumElements();
    Tensor* codes = nullptr;
    OP_REQUIRES_OK_ASYNC(
        ctx, ctx->allocate_output(0, TensorShape({k_}), &codes), done);
    void* residual = nullptr;
    if (kWithResidual) {
      Tensor* r = nullptr;
      OP_REQUIRES_OK_ASYNC(ctx, ctx->allocate_output(1, x.shape(), &r), done);
      residual = const_cast<char*>(r->tensor_data().data());
    }
    if (n == 0) {  // k == 0: nothing to write
      done();
      return;
    }
    Finisher finisher;
    OP_REQUIRES_OK_ASYNC(ctx, FinisherOf(ctx, &finisher), done);
    Tensor workspace, report_t;
    sparsesign::gpu::EncodeReport* report = nullptr;
    OP_REQUIRES_OK_ASYNC(
        ctx,
        AllocateWorkspace(ctx, sparsesign::gpu::EncodeWorkspaceBytes(format, n),
                          &workspace),
        done);
    OP_REQUIRES_OK_ASYNC(ctx, AllocateReport(ctx, &report_t, &report), done);
    const sparsesign::gpu::Status st = sparsesign::gpu::EncodeAsync(
        format, x.tensor_data().data(), n, k_, codes->flat<int32>().data(),
        residual, workspace.flat<uint8>().data(), workspace.NumElements(),
        report, StreamOf(ctx));
    // Invalid input: nothing was enqueued. Internal failures may follow
    // enqueued work that writes the report: finish after the stream too.
    if (!st.internal) OP_REQUIRES_OK_ASYNC(ctx, ToTfStatus(st), done);
    const int64_t k = k_;
    ThenFinish(
        ctx, finisher,
        [report_t, report, n, k, st]() {
          if (!st.ok) return ToTfStatus(st);
          return ToTfStatus(
              sparsesign::gpu::EncodeOutcome(*report, n, k, kWithResidual));
        },
        std::move(done));
  }

 private:
  int64_t k_ = 0;
};

class MajorityVoteGpuOp : public AsyncOpKernel {
 public:
  explicit MajorityVoteGpuOp(OpKernelConstruction* ctx) : AsyncOpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_elements", &num_elements_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("weighted", &weighted_));
    std::string on_invalid;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("on_invalid", &on_invalid));
    drop_ = on_invalid == "drop";
    OP_REQUIRES_OK(ctx, sparsesign_checks::CheckVoteAttrs(num_elements_));
    RequireDriver(ctx);
  }

  void ComputeAsync(OpKernelContext* ctx, DoneCallback done) override {
    const Tensor& codes = ctx->input(0);
    const Tensor& weights = ctx->input(1);
    OP_REQUIRES_OK_ASYNC(
        ctx, sparsesign_checks::CheckVoteInputs(codes, weights, weighted_),
        done);
    const int64_t m = codes.dim_size(0), k = codes.dim_size(1);
    Tensor* votes = nullptr;
    OP_REQUIRES_OK_ASYNC(
        ctx,
        ctx->allocate_output(0, TensorShape({num_elements_}), &votes), done);
    Tensor* dropped = nullptr;  // HostMemory: written by the callback
    OP_REQUIRES_OK_ASYNC(
        ctx, ctx->allocate_output(1, TensorShape({}), &dropped), done);
    Finisher finisher;
    OP_REQUIRES_OK_ASYNC(ctx, FinisherOf(ctx, &finisher), done);
    Tensor workspace, report_t;
    sparsesign::gpu::VoteReport* report = nullptr;
    OP_REQUIRES_OK_ASYNC(
        ctx,
        AllocateWorkspace(ctx,
                          sparsesign::gpu::VoteWorkspaceBytes(
                              m, num_elements_, weighted_),
                          &workspace),
        done);
    OP_REQUIRES_OK_ASYNC(ctx, AllocateReport(ctx, &report_t, &report), done);
    const sparsesign::gpu::Status st = sparsesign::gpu::MajorityVoteAsync(
        codes.flat<int32>().data(), m, k, num_elements_,
        weighted_ ? weights.flat<float>().data() : nullptr,
        votes->flat<float>().data(), workspace.flat<uint8>().data(),
        workspace.NumElements(), report, StreamOf(ctx));
    if (!st.internal) OP_REQUIRES_OK_ASYNC(ctx, ToTfStatus(st), done);
    const int64_t num_elements = num_elements_;
    const bool drop = drop_;
    ThenFinish(
        ctx, finisher,
        [report_t, report, dropped, m, num_elements, drop, st]() {
          if (!st.ok) return ToTfStatus(st);
          int64_t num_dropped = 0;
          const sparsesign::gpu::Status outcome =
              sparsesign::gpu::MajorityVoteOutcome(*report, m, num_elements,
                                                   drop, &num_dropped);
          dropped->scalar<int32>()() = static_cast<int32>(num_dropped);
          return ToTfStatus(outcome);
        },
        std::move(done));
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
