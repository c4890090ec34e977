"""tf_sparsesign: Sparse-SignSGD with Majority Vote (S3GD-MV) for TensorFlow.

Each worker sends only the positions and signs of the top-K entries of its
error-accumulated gradient; workers agree on each coordinate by majority
vote. The data path is encode -> gather -> vote -> apply; :mod:`.ops` holds
the two compiled primitives (encode and vote).
"""

from . import ops
from ._version import __version__
from .ops import majority_vote, sparse_sign_encode

__all__ = ["__version__", "ops", "sparse_sign_encode", "majority_vote"]
