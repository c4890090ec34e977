// Op registrations for the Rice wire format (kernels in rice_kernels.cc,
// the coder in ../core/rice.cc, the format in docs/WIRE.md).
#include "shape_checks.h"
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace tensorflow {
namespace {

using shape_inference::InferenceContext;
using shape_inference::ShapeHandle;

Status CheckNumElements(InferenceContext* c, const char* op) {
  int64_t n;
  return sparsesign_shapes::NumElements(c, op, &n);
}

}  // namespace

REGISTER_OP("RiceEncode")
    .Input("codes: int32")
    .Output("words: int32")
    .Attr("num_elements: int >= 0")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle codes;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 1, &codes));
      TF_RETURN_IF_ERROR(CheckNumElements(c, "rice_encode"));
      c->set_output(0, c->Vector(InferenceContext::kUnknownDim));
      return OkStatus();
    })
    .Doc(R"doc(
Rice-codes a wire-format-v1 message (see docs/WIRE.md).

The output is [W, count, tag, bit stream...], W the number of words used.
Each entry costs (gap >> r) + r + 2 bits, gap = index - previous index - 1,
r = RiceParameter(num_elements, count). Invalid codes (below -1, index >=
num_elements, indices not strictly increasing) are an InvalidArgument error.

codes: int32 [k], ascending by index; -1 anywhere is padding and skipped.
words: int32 [W].
num_elements: N, the size of the index space (<= 2**30).
)doc");

REGISTER_OP("RiceDecode")
    .Input("words: int32")
    .Output("codes: int32")
    .Output("valid: bool")
    .Attr("num_elements: int >= 0")
    .Attr("k: int >= 0")
    .Attr("on_invalid: {'raise', 'drop'} = 'raise'")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle words, batch, codes;
      TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(0), 1, &words));
      TF_RETURN_IF_ERROR(c->WithRankAtMost(words, 2, &words));
      TF_RETURN_IF_ERROR(CheckNumElements(c, "rice_decode"));
      int64_t k;
      TF_RETURN_IF_ERROR(c->GetAttr("k", &k));
      TF_RETURN_IF_ERROR(c->Subshape(words, 0, -1, &batch));
      TF_RETURN_IF_ERROR(c->Concatenate(batch, c->Vector(k), &codes));
      c->set_output(0, codes);
      c->set_output(1, batch);
      return OkStatus();
    })
    .Doc(R"doc(
Decodes Rice-coded messages back to wire-format-v1 codes.

Each message must be exactly what RiceEncode produces, optionally followed
by zero words (so messages padded to a common length decode). Decoding never
reads outside the input.

words: int32 [W] (one message) or [M, W] (one message per row).
codes: int32 [k] or [M, k]: the entries ascending by index, then -1.
valid: bool scalar or [M]: false where a message was invalid (drop mode);
  its codes are then all -1.
num_elements: N, the size of the index space (<= 2**30).
k: slots per message; a message with more than k entries is invalid.
on_invalid: 'raise' fails on the first invalid message, saying why;
  'drop' reports it in `valid` instead.
)doc");

}  // namespace tensorflow
