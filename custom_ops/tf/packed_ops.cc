// Op registrations for packed signs (kernels in packed_kernels.cc, the core
// in ../core/packed.cc, the format in docs/WIRE.md).
#include "shape_checks.h"
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace tensorflow {
namespace {

using shape_inference::DimensionHandle;
using shape_inference::InferenceContext;
using shape_inference::ShapeHandle;

// ceil(num_elements / 20): the words of a packed message.
Status PackedWords(InferenceContext* c, const char* op, int64_t* words) {
  int64_t n;
  TF_RETURN_IF_ERROR(sparsesign_shapes::NumElements(c, op, &n));
  *words = (n + 19) / 20;
  return OkStatus();
}

}  // namespace

REGISTER_OP("PackedSignsEncode")
    .Input("codes: int32")
    .Output("words: int32")
    .Attr("num_elements: int >= 0")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle codes;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 1, &codes));
      int64_t words;
      TF_RETURN_IF_ERROR(PackedWords(c, "packed_signs_encode", &words));
      c->set_output(0, c->Vector(words));
      return OkStatus();
    })
    .Doc(R"doc(
Writes wire-format-v1 codes as one ternary digit per coordinate.

Digit 0 means not sent, 1 means +, 2 means -; five digits make a byte (base
3), four bytes an int32 word. Coordinate i is digit i % 5 of byte (i % 20) / 5
of word i / 20.

codes: int32 [k] in any order; -1 anywhere is padding. A code below -1, an
  index >= num_elements or an index given twice is an InvalidArgument error.
words: int32 [ceil(num_elements / 20)].
num_elements: N, the number of coordinates (<= 2**30).
)doc");

REGISTER_OP("PackedSignsVote")
    .Input("rows: int32")
    .Input("weights: float")
    .Output("votes: float")
    .Attr("num_elements: int >= 0")
    .Attr("weighted: bool = false")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle rows, weights;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 2, &rows));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 1, &weights));
      int64_t words;
      TF_RETURN_IF_ERROR(PackedWords(c, "packed_signs_vote", &words));
      DimensionHandle unused;
      TF_RETURN_IF_ERROR(c->WithValue(c->Dim(rows, 1), words, &unused));
      int64_t n;
      TF_RETURN_IF_ERROR(c->GetAttr("num_elements", &n));
      c->set_output(0, c->Vector(n));
      return OkStatus();
    })
    .Doc(R"doc(
Majority vote read straight from packed-signs messages.

votes[i] = sign(sum_m w_m * s_{m,i}), s = +1 / -1 / 0 for the digits
1 / 2 / 0 of coordinate i in row m; the float32 sums of MajorityVote (rows in
order), so the votes equal MajorityVote over the same signs as codes. A byte
above 242 abstains for its five coordinates.

rows: int32 [M, ceil(num_elements / 20)], one message per row.
weights: float32 [M] (finite) when weighted, else an empty vector.
votes: float32 [num_elements] in {-1, 0, +1}.
)doc");

}  // namespace tensorflow
