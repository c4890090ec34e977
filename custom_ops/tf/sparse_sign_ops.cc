// Op registrations (interfaces, shape functions, docs) for tf_sparsesign.
// Kernels live in sparse_sign_kernels.cc; the algorithms in ../core.
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace tensorflow {
namespace {

using shape_inference::InferenceContext;
using shape_inference::ShapeHandle;

constexpr int64_t kMaxElements = int64_t{1} << 30;

// codes: [k]. Where N is known statically, reject k > N and N >= 2**30 early.
Status EncodeShape(InferenceContext* c) {
  int64_t k;
  TF_RETURN_IF_ERROR(c->GetAttr("k", &k));
  ShapeHandle x = c->input(0);
  if (c->RankKnown(x)) {
    int64_t n = 1;
    bool known = true;
    for (int i = 0; i < c->Rank(x); ++i) {
      const int64_t d = c->Value(c->Dim(x, i));
      if (d == InferenceContext::kUnknownDim) {
        known = false;
        break;
      }
      n *= d;
    }
    if (known && n >= kMaxElements)
      return errors::InvalidArgument(
          "sparse_sign_encode: input has ", n,
          " elements; the limit is 2**30 - 1 (int32 codes)");
    if (known && k > n)
      return errors::InvalidArgument("sparse_sign_encode: k must satisfy ",
                                     "0 <= k <= N = ", n, ", got k = ", k);
  }
  c->set_output(0, c->Vector(k));
  return OkStatus();
}

}  // namespace

REGISTER_OP("SparseSignEncode")
    .Input("x: T")
    .Output("codes: int32")
    .Attr("k: int >= 0")
    .Attr("T: {half, bfloat16, float, double}")
    .SetShapeFn(EncodeShape)
    .Doc(R"doc(
Top-k sign encoding (wire format v1).

Selects the k nonzero entries of x (flat, row-major) of largest magnitude,
ties going to the lower index, and emits (index << 1) | (x[index] < 0) for
each, ascending by index; slots beyond the nonzero count hold -1.
NaN anywhere in x is an InvalidArgument error; N must be below 2**30.

x: the tensor to encode, any shape.
codes: int32 [k].
k: how many entries to select, 0 <= k <= N.
)doc");

REGISTER_OP("SparseSignEncodeWithResidual")
    .Input("x: T")
    .Output("codes: int32")
    .Output("residual: T")
    .Attr("k: int >= 0")
    .Attr("T: {half, bfloat16, float, double}")
    .SetShapeFn([](InferenceContext* c) {
      TF_RETURN_IF_ERROR(EncodeShape(c));
      c->set_output(1, c->input(0));
      return OkStatus();
    })
    .Doc(R"doc(
SparseSignEncode plus the error-feedback residual in the same pass.

codes: int32 [k], as SparseSignEncode.
residual: x with the selected entries set to +0.
)doc");

REGISTER_OP("MajorityVote")
    .Input("codes: int32")
    .Input("weights: float")
    .Output("votes: float")
    .Output("num_dropped: int32")
    .Attr("num_elements: int >= 0")
    .Attr("weighted: bool = false")
    .Attr("on_invalid: {'raise', 'drop'} = 'raise'")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle codes, weights;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 2, &codes));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 1, &weights));
      int64_t n;
      TF_RETURN_IF_ERROR(c->GetAttr("num_elements", &n));
      if (n > kMaxElements)
        return errors::InvalidArgument(
            "majority_vote: num_elements must be <= 2**30, got ", n);
      c->set_output(0, c->Vector(n));
      c->set_output(1, c->Scalar());
      return OkStatus();
    })
    .Doc(R"doc(
Majority vote over workers' sparse sign messages.

votes[i] = sign(sum_m w_m * s_{m,i}), s = +1/-1 when row m holds a code for
index i with that sign, 0 otherwise; ties and unsent indices give 0.
Sums run in float32 in row order. -1 codes are padding.

codes: int32 [M, k], one message per row.
weights: float32 [M] when weighted, else an empty vector (all weights 1).
votes: float32 [num_elements] in {-1, 0, +1}.
num_dropped: rows that abstained for being invalid (on_invalid='drop').
on_invalid: 'raise' fails on the first invalid row, naming it and the code;
  'drop' makes invalid rows abstain.
)doc");

REGISTER_OP("SparseSignAccumulateEncode")
    .Input("memory: resource")
    .Input("gradient: T")
    .Output("codes: int32")
    .Output("values: T")
    .Attr("k: int >= 0")
    .Attr("T: {half, bfloat16, float, double}")
    .Attr("label: string = ''")
    .SetIsStateful()
    .SetShapeFn([](InferenceContext* c) {
      // The gradient stands in for the memory (same shape, checked at run
      // time against the variable).
      int64_t k;
      TF_RETURN_IF_ERROR(c->GetAttr("k", &k));
      ShapeHandle unused;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 0, &unused));
      c->set_output(0, c->Vector(k));
      c->set_output(1, c->Vector(k));
      return OkStatus();
    })
    .Doc(R"doc(
The fused error-feedback encode, in place on the memory variable:

  memory += gradient
  codes = SparseSignEncode(memory, k)
  memory[selected] = +0

one read of the gradient and one read-modify-write of the memory. Same codes
and memory as the three steps done separately, bit for bit.

memory: a resource variable of dtype T, the gradient's shape.
gradient: T, any shape, fewer than 2**30 elements.
codes: int32 [k], as SparseSignEncode.
values: T [k], the selected entries' values (of the sum), 0 in padding slots.
label: names the variable in error messages.
)doc");

REGISTER_OP("SparseMajorityVote")
    .Input("codes: int32")
    .Input("weights: float")
    .Output("indices: int32")
    .Output("tallies: float")
    .Output("num_dropped: int32")
    .Attr("num_elements: int >= 0")
    .Attr("weighted: bool = false")
    .Attr("on_invalid: {'raise', 'drop'} = 'raise'")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle codes, weights;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 2, &codes));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 1, &weights));
      c->set_output(0, c->Vector(InferenceContext::kUnknownDim));
      c->set_output(1, c->output(0));
      c->set_output(2, c->Scalar());
      return OkStatus();
    })
    .Doc(R"doc(
MajorityVote in sparse form: the indices (ascending) whose tally
sum_m w_m * s_{m,i} is not 0, and the tallies (float32, rows in order, as
MajorityVote sums them). Scattering their signs into zeros gives
MajorityVote's votes bit for bit; same validation, errors and attributes.

codes: int32 [M, k], one message per row.
weights: float32 [M] when weighted, else an empty vector.
indices: int32 [U], ascending.
tallies: float32 [U], nonzero.
num_dropped: rows that abstained for being invalid (on_invalid='drop').
)doc");

}  // namespace tensorflow
