"""The compiled primitives of S3GD-MV, with validation and a reference
fallback.

* :func:`sparse_sign_encode` — the ``k`` largest-magnitude entries of a
  tensor as wire-format-v1 codes ``(index << 1) | (value < 0)``.
* :func:`majority_vote` — ``sign(sum of rows)`` of workers' messages.
* :func:`rice_encode` / :func:`rice_decode` — the compact Rice wire format
  (docs/WIRE.md).
* :func:`accumulate_encode` — error feedback and encoding fused, in place
  on the memory variable; :func:`sparse_majority_vote` — the vote's nonzero
  entries only (what the aggregation uses).
* :func:`packed_signs_encode` / :func:`packed_signs_vote` — signSGD-MV's
  packed signs (one ternary digit per coordinate) and the vote read
  straight from them.
* :func:`check_finite` / :func:`scatter_sub` — the step's guard (NaN/Inf
  in a gradient stops it) and plain SGD's write on the touched
  coordinates.
* :func:`fused_encode_supported` — whether :func:`accumulate_encode` runs
  fused on a memory's device (CPU always, GPU with the GPU kernels).

Each runs the C++ kernels compiled against the installed TensorFlow
(:mod:`._build`, loaded by :mod:`._library`) and falls back, after one
warning, to the pure references in :mod:`tf_sparsesign.reference` (same
results, slower) when they cannot be built. GPU kernels exist when the
library was built with CUDA; where each op runs on a GPU host is in
docs/GPU.md.
"""

from ..constants import MAX_ELEMENTS, PAD_CODE
from .devices import fused_encode_supported
from .fused import accumulate_encode, sparse_majority_vote
from .packed import packed_signs_encode, packed_signs_vote
from .rice import rice_decode, rice_encode, rice_max_words, rice_parameter
from .sign import is_compiled, majority_vote, sparse_sign_encode
from .step import check_finite, scatter_sub

__all__ = ["sparse_sign_encode", "majority_vote", "accumulate_encode",
           "sparse_majority_vote", "rice_encode", "rice_decode",
           "rice_max_words", "rice_parameter", "packed_signs_encode",
           "packed_signs_vote", "check_finite", "scatter_sub", "is_compiled",
           "fused_encode_supported", "PAD_CODE", "MAX_ELEMENTS"]
