// GPU kernels of the step's ops: the fused error-feedback encode
// (SparseSignAccumulateEncode), the sparse SGD write (SparseSignScatterSub),
// the finiteness check (SparseSignCheckFinite) and packed signs
// (PackedSignsEncode, PackedSignsVote). Like sparse_sign_kernels_gpu.cc:
// every input validated with the CPU kernels' checks and texts
// (kernel_checks.h) before any memory is read, then the launchers
// (../cuda/sparse_sign_cuda.h, ../cuda/step_cuda.h) enqueued on the op's
// stream, and the op finished in the stream's event callback (no waiting).
// The variable ops write in place without switching the variable to
// copy-on-read; a buffer another tensor still shares is copied first, as
// the CPU kernels do. Only under GOOGLE_CUDA.
#if GOOGLE_CUDA

#define EIGEN_USE_GPU

#include <string>
#include <utility>

#include "../core/packed.h"
#include "../core/sparse_sign_core.h"
#include "../cuda/sparse_sign_cuda.h"
#include "../cuda/step_cuda.h"
#include "gpu_kernel_util.h"
#include "kernel_checks.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/resource_var.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"

namespace tensorflow {
namespace {

namespace gpu = sparsesign::gpu;
using sparsesign_gpu::AllocateReport;
using sparsesign_gpu::AllocateWorkspace;
using sparsesign_gpu::Finisher;
using sparsesign_gpu::FinisherOf;
using sparsesign_gpu::PrepareToUpdateOnGpu;
using sparsesign_gpu::RequireDriver;
using sparsesign_gpu::StreamOf;
using sparsesign_gpu::ThenFinish;
using sparsesign_gpu::ToTfStatus;

char* Data(const Tensor& t) {
  return const_cast<char*>(t.tensor_data().data());
}

// The finisher, the workspace and the pinned report of one launch.
template <typename Report>
struct Launch {
  Finisher finisher;
  Tensor workspace, report_tensor;
  Report* report = nullptr;

  Status Prepare(OpKernelContext* ctx, size_t workspace_bytes) {
    TF_RETURN_IF_ERROR(FinisherOf(ctx, &finisher));
    TF_RETURN_IF_ERROR(AllocateWorkspace(ctx, workspace_bytes, &workspace));
    return AllocateReport(ctx, &report_tensor, &report);
  }
  void* ws() const { return Data(workspace); }
  size_t ws_bytes() const { return workspace.NumElements(); }
};

// Ends the op: invalid input (nothing enqueued) at once; otherwise after
// the stream, with outcome(report) (internal failures may follow enqueued
// work that writes the report, so they wait too).
template <typename Report, typename Outcome>
void Finish(OpKernelContext* ctx, const Launch<Report>& l,
            const gpu::Status& st, const std::string& prefix,
            Outcome outcome, AsyncOpKernel::DoneCallback done) {
  if (!st.ok && !st.internal) {
    ctx->SetStatus(ToTfStatus(st, prefix));
    done();
    return;
  }
  Tensor keep = l.report_tensor;
  Report* report = l.report;
  ThenFinish(
      ctx, l.finisher,
      [keep, report, st, prefix, outcome]() {
        if (!st.ok) return ToTfStatus(st, prefix);
        return ToTfStatus(outcome(*report), prefix);
      },
      std::move(done));
}

template <typename T>
class AccumulateEncodeGpuOp : public AsyncOpKernel {
 public:
  explicit AccumulateEncodeGpuOp(OpKernelConstruction* ctx)
      : AsyncOpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("k", &k_));
    std::string label;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("label", &label));
    prefix_ = sparsesign_checks::LabelPrefix(label);
    RequireDriver(ctx);
  }

  void ComputeAsync(OpKernelContext* ctx, DoneCallback done) override {
    const Tensor& gradient = ctx->input(1);
    sparsesign::FloatFormat format;
    OP_REQUIRES_OK_ASYNC(
        ctx, sparsesign_checks::CheckEncodeInput(gradient, k_, &format),
        done);
    core::RefCountPtr<Var> var;
    OP_REQUIRES_OK_ASYNC(
        ctx, LookupResource(ctx, HandleFromInput(ctx, 0), &var), done);
    mutex_lock lock(*var->mu());  // held while the work is enqueued
    Tensor* memory = var->tensor();
    OP_REQUIRES_OK_ASYNC(
        ctx, sparsesign_checks::CheckMemory(*memory, gradient, prefix_),
        done);
    OP_REQUIRES_OK_ASYNC(
        ctx,
        PrepareToUpdateOnGpu(ctx, memory, var->copy_on_read_mode.load()),
        done);
    Tensor *codes, *values;
    OP_REQUIRES_OK_ASYNC(
        ctx, ctx->allocate_output(0, TensorShape({k_}), &codes), done);
    OP_REQUIRES_OK_ASYNC(
        ctx, ctx->allocate_output(1, TensorShape({k_}), &values), done);
    const int64_t n = gradient.NumElements();
    if (n == 0) {  // k == 0: nothing to write
      done();
      return;
    }
    Launch<gpu::EncodeReport> l;
    OP_REQUIRES_OK_ASYNC(
        ctx, l.Prepare(ctx, gpu::EncodeWorkspaceBytes(format, n)), done);
    const gpu::Status st = gpu::AccumulateEncodeAsync(
        format, Data(*memory), Data(gradient), n, k_,
        codes->flat<int32>().data(), Data(*values), l.ws(), l.ws_bytes(),
        l.report, StreamOf(ctx));
    const int64_t k = k_;
    Finish(ctx, l, st, prefix_,
           [n, k](const gpu::EncodeReport& r) {
             return gpu::EncodeOutcome(r, n, k, false);
           },
           std::move(done));
  }

 private:
  int64_t k_ = 0;
  std::string prefix_;
};

template <typename T>
class ScatterSubGpuOp : public AsyncOpKernel {
 public:
  explicit ScatterSubGpuOp(OpKernelConstruction* ctx) : AsyncOpKernel(ctx) {
    RequireDriver(ctx);
  }

  void ComputeAsync(OpKernelContext* ctx, DoneCallback done) override {
    const Tensor& indices = ctx->input(1);
    const Tensor& updates = ctx->input(2);
    OP_REQUIRES_OK_ASYNC(
        ctx, sparsesign_checks::CheckScatterInputs(indices, updates), done);
    core::RefCountPtr<Var> var;
    OP_REQUIRES_OK_ASYNC(
        ctx, LookupResource(ctx, HandleFromInput(ctx, 0), &var), done);
    mutex_lock lock(*var->mu());
    Tensor* tensor = var->tensor();
    OP_REQUIRES_OK_ASYNC(ctx,
                         sparsesign_checks::CheckScatterVariable(
                             *tensor, DataTypeToEnum<T>::v()),
                         done);
    OP_REQUIRES_OK_ASYNC(
        ctx,
        PrepareToUpdateOnGpu(ctx, tensor, var->copy_on_read_mode.load()),
        done);
    const int64_t u = indices.NumElements();
    if (u == 0) {
      done();
      return;
    }
    sparsesign::FloatFormat format;
    sparsesign_checks::FormatOf(tensor->dtype(), &format);
    Launch<gpu::ScatterReport> l;
    OP_REQUIRES_OK_ASYNC(ctx, l.Prepare(ctx, gpu::StepWorkspaceBytes()),
                         done);
    const int64_t n = tensor->NumElements();
    const gpu::Status st = gpu::ScatterSubAsync(
        format, Data(*tensor), n, indices.flat<int32>().data(),
        Data(updates), u, l.ws(), l.ws_bytes(), l.report, StreamOf(ctx));
    const std::string shape = tensor->shape().DebugString();
    Finish(ctx, l, st, "",
           [n, shape](const gpu::ScatterReport& r) {
             return gpu::ScatterSubOutcome(r, n, shape);
           },
           std::move(done));
  }
};

template <typename T>
class CheckFiniteGpuOp : public AsyncOpKernel {
 public:
  explicit CheckFiniteGpuOp(OpKernelConstruction* ctx) : AsyncOpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("message", &message_));
    RequireDriver(ctx);
  }

  void ComputeAsync(OpKernelContext* ctx, DoneCallback done) override {
    const Tensor& x = ctx->input(0);
    ctx->set_output(0, x);  // y aliases x; an error discards it
    const int64_t n = x.NumElements();
    if (n == 0) {
      done();
      return;
    }
    sparsesign::FloatFormat format;
    sparsesign_checks::FormatOf(x.dtype(), &format);
    Launch<gpu::FiniteReport> l;
    OP_REQUIRES_OK_ASYNC(ctx, l.Prepare(ctx, gpu::StepWorkspaceBytes()),
                         done);
    const gpu::Status st = gpu::CheckFiniteAsync(
        format, Data(x), n, l.ws(), l.ws_bytes(), l.report, StreamOf(ctx));
    const std::string message = message_;
    Finish(ctx, l, st, "",
           [n, message](const gpu::FiniteReport& r) {
             return gpu::CheckFiniteOutcome(r, n, message);
           },
           std::move(done));
  }

 private:
  std::string message_;
};

class PackedSignsEncodeGpuOp : public AsyncOpKernel {
 public:
  explicit PackedSignsEncodeGpuOp(OpKernelConstruction* ctx)
      : AsyncOpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_elements", &n_));
    OP_REQUIRES_OK(ctx, sparsesign_checks::CheckNumElements(
                            "packed_signs_encode", n_));
    RequireDriver(ctx);
  }

  void ComputeAsync(OpKernelContext* ctx, DoneCallback done) override {
    const Tensor& codes = ctx->input(0);
    OP_REQUIRES_OK_ASYNC(ctx, sparsesign_checks::CheckPackedCodes(codes),
                         done);
    const int64_t words = sparsesign::PackedWords(n_);
    Tensor* out = nullptr;
    OP_REQUIRES_OK_ASYNC(
        ctx, ctx->allocate_output(0, TensorShape({words}), &out), done);
    Launch<gpu::PackReport> l;
    OP_REQUIRES_OK_ASYNC(ctx, l.Prepare(ctx, gpu::StepWorkspaceBytes()),
                         done);
    const gpu::Status st = gpu::PackSignsAsync(
        codes.flat<int32>().data(), codes.dim_size(0), n_,
        out->flat<int32>().data(), words, l.ws(), l.ws_bytes(), l.report,
        StreamOf(ctx));
    const int64_t n = n_;
    Finish(ctx, l, st, "",
           [n](const gpu::PackReport& r) {
             return gpu::PackSignsOutcome(r, n);
           },
           std::move(done));
  }

 private:
  int64_t n_ = 0;
};

class PackedSignsVoteGpuOp : public AsyncOpKernel {
 public:
  explicit PackedSignsVoteGpuOp(OpKernelConstruction* ctx)
      : AsyncOpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_elements", &n_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("weighted", &weighted_));
    OP_REQUIRES_OK(ctx, sparsesign_checks::CheckNumElements(
                            "packed_signs_vote", n_));
    RequireDriver(ctx);
  }

  void ComputeAsync(OpKernelContext* ctx, DoneCallback done) override {
    const Tensor& rows = ctx->input(0);
    const Tensor& weights = ctx->input(1);
    const int64_t words = sparsesign::PackedWords(n_);
    OP_REQUIRES_OK_ASYNC(ctx,
                         sparsesign_checks::CheckPackedRows(
                             rows, weights, n_, words, weighted_),
                         done);
    Tensor* votes = nullptr;
    OP_REQUIRES_OK_ASYNC(
        ctx, ctx->allocate_output(0, TensorShape({n_}), &votes), done);
    Launch<gpu::PackedVoteReport> l;
    OP_REQUIRES_OK_ASYNC(ctx, l.Prepare(ctx, gpu::StepWorkspaceBytes()),
                         done);
    const gpu::Status st = gpu::PackedVoteAsync(
        rows.flat<int32>().data(), rows.dim_size(0), words, n_,
        weighted_ ? weights.flat<float>().data() : nullptr,
        votes->flat<float>().data(), l.ws(), l.ws_bytes(), l.report,
        StreamOf(ctx));
    Finish(ctx, l, st, "",
           [](const gpu::PackedVoteReport& r) {
             return gpu::PackedVoteOutcome(r);
           },
           std::move(done));
  }

 private:
  int64_t n_ = 0;
  bool weighted_ = false;
};

// Resource handles live in host memory, as for TF's own variable ops.
#define REGISTER_STEP_GPU(T)                                             \
  REGISTER_KERNEL_BUILDER(Name("SparseSignAccumulateEncode")             \
                              .Device(DEVICE_GPU)                        \
                              .HostMemory("memory")                      \
                              .TypeConstraint<T>("T"),                   \
                          AccumulateEncodeGpuOp<T>);                     \
  REGISTER_KERNEL_BUILDER(Name("SparseSignScatterSub")                   \
                              .Device(DEVICE_GPU)                        \
                              .HostMemory("variable")                    \
                              .TypeConstraint<T>("T"),                   \
                          ScatterSubGpuOp<T>);                           \
  REGISTER_KERNEL_BUILDER(                                               \
      Name("SparseSignCheckFinite").Device(DEVICE_GPU).TypeConstraint<T>("T"), \
      CheckFiniteGpuOp<T>);
REGISTER_STEP_GPU(Eigen::half);
REGISTER_STEP_GPU(bfloat16);
REGISTER_STEP_GPU(float);
REGISTER_STEP_GPU(double);
#undef REGISTER_STEP_GPU

REGISTER_KERNEL_BUILDER(Name("PackedSignsEncode").Device(DEVICE_GPU),
                        PackedSignsEncodeGpuOp);
REGISTER_KERNEL_BUILDER(Name("PackedSignsVote").Device(DEVICE_GPU),
                        PackedSignsVoteGpuOp);

}  // namespace
}  // namespace tensorflow

#endif  // GOOGLE_CUDA
