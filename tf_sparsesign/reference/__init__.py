"""Pure references of the compiled ops: the readable statement of their
semantics and the fallback when the op library cannot be built.

* :mod:`.sign` — top-K sign encoding and the majority vote in pure
  TensorFlow (identical results to the compiled ops, bit for bit).
* :mod:`.rice` — the Rice wire format in NumPy (word for word the same as
  the compiled coder).
* :mod:`.packed` — packed signs and the vote read from them, in pure
  TensorFlow (bit for bit the same as the compiled ops).
"""

from . import packed, rice, sign
from .sign import majority_vote, sparse_sign_encode

__all__ = ["sign", "rice", "packed", "sparse_sign_encode", "majority_vote"]
