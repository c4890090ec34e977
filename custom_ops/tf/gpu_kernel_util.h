// Helpers shared by the TF GPU kernels (sparse_sign_kernels_gpu.cc,
// step_kernels_gpu.cc): the op's stream, scratch and pinned report memory
// from TF's allocators, finishing in the stream's event callback (never
// waiting for the GPU), the copy-before-write of a shared variable buffer,
// and the launchers' status as a TF status. Only under GOOGLE_CUDA.
#ifndef TF_SPARSESIGN_TF_GPU_KERNEL_UTIL_H_
#define TF_SPARSESIGN_TF_GPU_KERNEL_UTIL_H_

#if GOOGLE_CUDA

#define EIGEN_USE_GPU

#include <algorithm>
#include <functional>
#include <string>
#include <utility>

#include "../cuda/sparse_sign_cuda.h"
#include "tensorflow/core/common_runtime/device/device_event_mgr.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace tensorflow {
namespace sparsesign_gpu {

inline cudaStream_t StreamOf(OpKernelContext* ctx) {
  return ctx->eigen_gpu_device().stream();
}

// The launcher's status; `prefix` (e.g. "variable 'w': ") goes first.
inline Status ToTfStatus(const sparsesign::gpu::Status& st,
                         const std::string& prefix = std::string()) {
  if (st.ok) return OkStatus();
  return st.internal ? errors::Internal(prefix, st.message)
                     : errors::InvalidArgument(prefix, st.message);
}

// Scratch device memory from TF's allocator. Freed when the op's tensors
// go, which TF orders after the work already enqueued on the stream.
inline Status AllocateWorkspace(OpKernelContext* ctx, size_t bytes,
                                Tensor* t) {
  return ctx->allocate_temp(
      DT_UINT8,
      TensorShape({static_cast<int64_t>(std::max<size_t>(bytes, 1))}), t);
}

// Pinned host memory for a launcher's report (the device copies into it
// asynchronously); the callback keeps the tensor alive until it has read it.
template <typename Report>
Status AllocateReport(OpKernelContext* ctx, Tensor* t, Report** report) {
  AllocatorAttributes host;
  host.set_on_host(true);
  host.set_gpu_compatible(true);
  TF_RETURN_IF_ERROR(ctx->allocate_temp(
      DT_UINT8, TensorShape({static_cast<int64_t>(sizeof(Report))}), t,
      host));
  *report = reinterpret_cast<Report*>(t->flat<uint8>().data());
  return OkStatus();
}

// Where the op's completion is signalled: TF's event manager and the op's
// stream. Looked up before anything is enqueued.
struct Finisher {
  EventMgr* event_mgr = nullptr;
  se::Stream* stream = nullptr;
};

inline Status FinisherOf(OpKernelContext* ctx, Finisher* f) {
  const DeviceBase::AcceleratorDeviceInfo* info =
      ctx->device()->tensorflow_accelerator_device_info();
  f->event_mgr = info ? info->event_mgr : nullptr;
  f->stream = ctx->op_device_context() ? ctx->op_device_context()->stream()
                                       : nullptr;
  if (f->event_mgr == nullptr || f->stream == nullptr)
    return errors::Internal(
        "tf_sparsesign: no GPU stream or event manager for this op");
  return OkStatus();
}

// Runs `finish` (on TF's event thread) once the GPU has done everything
// enqueued on the op's stream so far, then calls `done`.
inline void ThenFinish(OpKernelContext* ctx, const Finisher& f,
                       std::function<Status()> finish,
                       AsyncOpKernel::DoneCallback done) {
  f.event_mgr->ThenExecute(
      f.stream, [ctx, finish = std::move(finish), done = std::move(done)]() {
        const Status st = finish();
        if (!st.ok()) ctx->SetStatus(st);
        done();
      });
}

// Fails the kernel's construction when the driver cannot run the kernels.
inline void RequireDriver(OpKernelConstruction* ctx) {
  const sparsesign::gpu::Status st = sparsesign::gpu::CheckDriver();
  if (!st.ok) ctx->CtxFailure(__FILE__, __LINE__, ToTfStatus(st));
}

// PrepareToUpdateVariable (training_op_helpers.h) for a variable on the
// GPU: while another tensor shares the buffer (or the variable is in
// copy-on-read mode), write into a copy, made on the op's stream. Its CPU
// twin calls TF's DenseUpdate functor, whose GPU instance a custom op
// cannot rely on being exported.
inline Status PrepareToUpdateOnGpu(OpKernelContext* ctx, Tensor* tensor,
                                   bool copy_on_read_mode) {
  if (!copy_on_read_mode && tensor->RefCountIsOne()) return OkStatus();
  Tensor copy;
  AllocatorAttributes attr;
  attr.set_gpu_compatible(true);
  attr.set_nic_compatible(true);
  TF_RETURN_IF_ERROR(
      ctx->allocate_temp(tensor->dtype(), tensor->shape(), &copy, attr));
  const size_t bytes = tensor->TotalBytes();
  if (bytes > 0) {
    const cudaError_t err = cudaMemcpyAsync(
        const_cast<char*>(copy.tensor_data().data()),
        tensor->tensor_data().data(), bytes, cudaMemcpyDeviceToDevice,
        StreamOf(ctx));
    if (err != cudaSuccess)
      return errors::Internal("tf_sparsesign: copying a shared variable "
                              "buffer failed: ", cudaGetErrorName(err));
  }
  *tensor = copy;
  return OkStatus();
}

}  // namespace sparsesign_gpu
}  // namespace tensorflow

#endif  // GOOGLE_CUDA
#endif  // TF_SPARSESIGN_TF_GPU_KERNEL_UTIL_H_
