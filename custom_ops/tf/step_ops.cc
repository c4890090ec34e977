// Op registrations for the step's two host-side helpers (kernels in
// step_kernels.cc): the finiteness check that guards a step, and the sparse
// SGD write on the touched coordinates only.
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace tensorflow {

using shape_inference::InferenceContext;
using shape_inference::ShapeHandle;

REGISTER_OP("SparseSignCheckFinite")
    .Input("x: T")
    .Output("y: T")
    .Attr("T: {half, bfloat16, float, double}")
    .Attr("message: string")
    .SetShapeFn(shape_inference::UnchangedShape)
    .Doc(R"doc(
y = x, or an InvalidArgument error when x holds a NaN or an infinity.

What tf.debugging.check_numerics does, in one multithreaded pass: the error
text is `message`, then how many entries are not finite and the first one's
flat index and value. y aliases x (no copy).
)doc");

REGISTER_OP("SparseSignScatterSub")
    .Input("variable: resource")
    .Input("indices: int32")
    .Input("updates: T")
    .Attr("T: {half, bfloat16, float, double}")
    .SetIsStateful()
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle indices, updates;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 1, &indices));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 1, &updates));
      ShapeHandle unused;
      return c->Merge(indices, updates, &unused);
    })
    .Doc(R"doc(
variable.flat[indices[i]] -= updates[i] for every i, in place.

What ResourceScatterNdSub does with flat (row-major) indices, bit for bit,
without switching the variable to copy-on-read (TensorFlow's sparse
variable ops do, and from then on every read of the variable copies it).
Every index is checked against the variable's size before anything is
written; the buffer is copied first only while another tensor still
shares it (as dense assignments do).

variable: a resource variable of dtype T, any shape.
indices: int32 [U], flat positions in [0, number of elements).
updates: T [U].
)doc");

}  // namespace tensorflow
