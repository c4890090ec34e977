"""tf_sparsesign: Sparse-SignSGD with Majority Vote (S3GD-MV) for TensorFlow.

Each worker sends only the positions and signs of the top-K entries of its
error-accumulated gradient; workers agree on each coordinate by majority
vote. The data path is encode -> gather -> vote -> apply
(:mod:`tf_sparsesign.collective`); :mod:`tf_sparsesign.ops` holds the two
compiled primitives.

Entry points:

* :class:`SparseSignStrategy` — one host, several devices (MirroredStrategy).
* :class:`MultiWorkerSparseSignStrategy` — several hosts (TF_CONFIG).
* :class:`SparseSignOptimizer` — wraps any Keras optimizer, any strategy.
* :class:`CommunicationLogger` — bytes sent vs dense in fit logs/TensorBoard.
* :class:`BackupAndRestore` — per-worker backups keeping each worker's
  error-feedback memory.
* :class:`Adversary` — test/experiment hook: misbehaving replicas.
"""

from . import ops, policy
from ._version import __version__
from .accounting import CommunicationLogger
from .adversary import Adversary
from .backup import BackupAndRestore
from .ops import majority_vote, sparse_sign_encode
from .optimizer import SparseSignOptimizer
from .strategy import MultiWorkerSparseSignStrategy, SparseSignStrategy

__all__ = ["__version__", "ops", "policy", "sparse_sign_encode",
           "majority_vote", "SparseSignStrategy",
           "MultiWorkerSparseSignStrategy", "SparseSignOptimizer",
           "CommunicationLogger", "BackupAndRestore", "Adversary"]
