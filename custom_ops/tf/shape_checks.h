// Checks shared by the op registrations' shape functions.
#ifndef TF_SPARSESIGN_TF_SHAPE_CHECKS_H_
#define TF_SPARSESIGN_TF_SHAPE_CHECKS_H_

#include "tensorflow/core/framework/shape_inference.h"

namespace tensorflow {
namespace sparsesign_shapes {

constexpr int64_t kMaxElements = int64_t{1} << 30;

// The num_elements attribute (at most 2**30) into *n.
inline Status NumElements(shape_inference::InferenceContext* c,
                          const char* op, int64_t* n) {
  TF_RETURN_IF_ERROR(c->GetAttr("num_elements", n));
  if (*n > kMaxElements)
    return errors::InvalidArgument(op, ": num_elements must be <= 2**30, got ",
                                   *n);
  return OkStatus();
}

}  // namespace sparsesign_shapes
}  // namespace tensorflow

#endif  // TF_SPARSESIGN_TF_SHAPE_CHECKS_H_
