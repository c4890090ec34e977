"""Pure references of the compiled ops: the readable statement of their
semantics and the fallback when the op library cannot be built.

* :mod:`.sign` — top-K sign encoding and the majority vote in pure
  TensorFlow (identical results to the compiled ops, bit for bit).
* :mod:`.rice` — the Rice wire format in NumPy (word for word the same as
  the compiled coder).
"""

from . import rice, sign
from .sign import majority_vote, sparse_sign_encode

__all__ = ["sign", "rice", "sparse_sign_encode", "majority_vote"]
