// Input validation shared by the CPU and GPU kernels: one set of checks and
// error texts, run with OP_REQUIRES_OK before any memory is touched; and the
// intra-op thread pool as the core's ParallelRunner.
#ifndef TF_SPARSESIGN_TF_KERNEL_CHECKS_H_
#define TF_SPARSESIGN_TF_KERNEL_CHECKS_H_

#include <string>

#include "../core/sparse_sign_core.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/types.h"
#include "tensorflow/core/lib/core/threadpool.h"

namespace tensorflow {
namespace sparsesign_checks {

// The core's ParallelRunner on the kernel's intra-op thread pool.
inline sparsesign::ParallelRunner PoolRunner(OpKernelContext* ctx) {
  thread::ThreadPool* pool =
      ctx->device()->tensorflow_cpu_worker_threads()->workers;
  return [pool](int64_t num_tasks,
                const std::function<void(int64_t, int64_t)>& fn) {
    // Each task is a chunk of >= 64K elements: large cost, one task a unit.
    pool->ParallelFor(num_tasks, /*cost_per_unit=*/1 << 20,
                      [&fn](int64_t b, int64_t e) { fn(b, e); });
  };
}

// num_elements (an attribute) must fit the int32 codes' index space.
inline Status CheckNumElements(const char* op, int64_t n) {
  if (n > sparsesign::kMaxElements)
    return errors::InvalidArgument(op, ": num_elements must be <= 2**30, got ",
                                   n);
  return OkStatus();
}

inline bool FormatOf(DataType dt, sparsesign::FloatFormat* f) {
  switch (dt) {
    case DT_HALF: *f = sparsesign::FloatFormat::kFloat16; return true;
    case DT_BFLOAT16: *f = sparsesign::FloatFormat::kBFloat16; return true;
    case DT_FLOAT: *f = sparsesign::FloatFormat::kFloat32; return true;
    case DT_DOUBLE: *f = sparsesign::FloatFormat::kFloat64; return true;
    default: return false;
  }
}

// x's dtype, size limit and 0 <= k <= N; sets *format.
inline Status CheckEncodeInput(const Tensor& x, int64_t k,
                               sparsesign::FloatFormat* format) {
  if (!FormatOf(x.dtype(), format))
    return errors::InvalidArgument(
        "sparse_sign_encode: x must be float16, bfloat16, float32 or "
        "float64, got ", DataTypeString(x.dtype()));
  const int64_t n = x.NumElements();
  if (n >= sparsesign::kMaxElements)
    return errors::InvalidArgument(
        "sparse_sign_encode: input has ", n,
        " elements; the limit is 2**30 - 1 = ", sparsesign::kMaxElements - 1,
        " (codes are int32: (index << 1) | sign)");
  if (k < 0 || k > n)
    return errors::InvalidArgument(
        "sparse_sign_encode: k must satisfy 0 <= k <= N = ", n, ", got k = ",
        k, " for x of shape ", x.shape().DebugString());
  return OkStatus();
}

inline Status CheckVoteAttrs(int64_t num_elements) {
  if (num_elements > sparsesign::kMaxElements)
    return errors::InvalidArgument(
        "majority_vote: num_elements must be <= 2**30, got ", num_elements);
  return OkStatus();
}

// codes is [M, k]; weights is [M] when weighted, else [0].
inline Status CheckVoteInputs(const Tensor& codes, const Tensor& weights,
                              bool weighted) {
  if (codes.dims() != 2)
    return errors::InvalidArgument(
        "majority_vote: codes must be int32 [M, k], got shape ",
        codes.shape().DebugString());
  if (weights.dims() != 1)
    return errors::InvalidArgument(
        "majority_vote: weights must be a vector, got shape ",
        weights.shape().DebugString());
  const int64_t expect = weighted ? codes.dim_size(0) : 0;
  if (weights.dim_size(0) != expect)
    return errors::InvalidArgument(
        "majority_vote: weights must have shape [", expect,
        "] (one per row of codes", weighted ? "" : ", or none", "), got ",
        weights.shape().DebugString());
  return OkStatus();
}

// The fused encode's error prefix: "variable 'label': ", or nothing.
inline std::string LabelPrefix(const std::string& label) {
  return label.empty() ? std::string() : "variable '" + label + "': ";
}

// The fused encode's memory variable against its gradient.
inline Status CheckMemory(const Tensor& memory, const Tensor& gradient,
                          const std::string& prefix) {
  if (!memory.IsInitialized())
    return errors::FailedPrecondition(prefix,
                                      "the memory variable is not "
                                      "initialized");
  if (memory.dtype() != gradient.dtype())
    return errors::InvalidArgument(
        prefix, "the memory is ", DataTypeString(memory.dtype()),
        " but the gradient is ", DataTypeString(gradient.dtype()));
  if (memory.shape() != gradient.shape())
    return errors::InvalidArgument(
        prefix, "the memory has shape ", memory.shape().DebugString(),
        " but the gradient has ", gradient.shape().DebugString());
  return OkStatus();
}

// scatter_sub's indices and updates: vectors of one length.
inline Status CheckScatterInputs(const Tensor& indices,
                                 const Tensor& updates) {
  if (indices.dims() == 1 && updates.dims() == 1 &&
      indices.dim_size(0) == updates.dim_size(0))
    return OkStatus();
  return errors::InvalidArgument(
      "scatter_sub: indices and updates must be vectors of one length, got "
      "shapes ", indices.shape().DebugString(), " and ",
      updates.shape().DebugString());
}

// scatter_sub's variable: initialized and of the updates' dtype.
inline Status CheckScatterVariable(const Tensor& variable, DataType dtype) {
  if (!variable.IsInitialized())
    return errors::FailedPrecondition(
        "scatter_sub: the variable is not initialized");
  if (variable.dtype() != dtype)
    return errors::InvalidArgument(
        "scatter_sub: the variable is ", DataTypeString(variable.dtype()),
        " but the updates are ", DataTypeString(dtype));
  return OkStatus();
}

// packed_signs_encode's codes: int32 [k].
inline Status CheckPackedCodes(const Tensor& codes) {
  if (codes.dims() == 1) return OkStatus();
  return errors::InvalidArgument(
      "packed_signs_encode: codes must be int32 [k], got shape ",
      codes.shape().DebugString());
}

// packed_signs_vote's rows [M, words] and weights ([M] or [0]).
inline Status CheckPackedRows(const Tensor& rows, const Tensor& weights,
                              int64_t n, int64_t words, bool weighted) {
  if (rows.dims() != 2 || rows.dim_size(1) != words)
    return errors::InvalidArgument(
        "packed_signs_vote: rows must be int32 [M, ", words, "] (ceil(", n,
        " / 20) words per message), got shape ", rows.shape().DebugString());
  const int64_t expect = weighted ? rows.dim_size(0) : 0;
  if (weights.dims() != 1 || weights.dim_size(0) != expect)
    return errors::InvalidArgument(
        "packed_signs_vote: weights must have shape [", expect,
        "] (one per row", weighted ? "" : ", or none", "), got ",
        weights.shape().DebugString());
  return OkStatus();
}

}  // namespace sparsesign_checks
}  // namespace tensorflow

#endif  // TF_SPARSESIGN_TF_KERNEL_CHECKS_H_
