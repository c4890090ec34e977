// The plain C++ core's ParallelRunner on TensorFlow's intra-op thread pool.
#ifndef TF_SPARSESIGN_TF_POOL_RUNNER_H_
#define TF_SPARSESIGN_TF_POOL_RUNNER_H_

#include "../core/sparse_sign_core.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/lib/core/threadpool.h"

namespace tensorflow {
namespace sparsesign_pool {

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

}  // namespace sparsesign_pool
}  // namespace tensorflow

#endif  // TF_SPARSESIGN_TF_POOL_RUNNER_H_
