"""tf_sparsesign: Sparse-SignSGD with Majority Vote (S3GD-MV) for TensorFlow.

Each worker sends only the positions and signs of the top-K entries of its
error-accumulated gradient; workers agree on each coordinate by majority
vote. The data path is encode -> gather -> vote -> apply
(:mod:`tf_sparsesign.aggregation`); :mod:`tf_sparsesign.ops` holds the
compiled primitives.

Entry points:

* :class:`SparseSignStrategy` — one host, several devices (MirroredStrategy).
* :class:`MultiWorkerSparseSignStrategy` — several hosts (TF_CONFIG).
* :class:`SparseSignOptimizer` — wraps any Keras optimizer, any strategy.
* :class:`SparseSignConfig` — the settings all three take;
  :data:`VOTE_MODES` — the vote rules ``vote=`` accepts.
* :class:`CommunicationLogger` — bytes sent vs dense in fit logs/TensorBoard.
* :class:`BackupAndRestore` — per-worker backups keeping each worker's
  error-feedback memory.
* :func:`communication_stats` — the same counters as a dict.
"""

from . import ops, policy
from ._version import __version__
from .accounting import communication_stats
from .config import VOTE_MODES, SparseSignConfig
from .integration.callbacks import BackupAndRestore, CommunicationLogger
from .integration.optimizer import SparseSignOptimizer
from .integration.strategy import (MultiWorkerSparseSignStrategy,
                                   SparseSignStrategy)
from .ops import majority_vote, sparse_sign_encode

__all__ = ["__version__", "ops", "policy", "sparse_sign_encode",
           "majority_vote", "SparseSignStrategy",
           "MultiWorkerSparseSignStrategy", "SparseSignOptimizer",
           "SparseSignConfig", "VOTE_MODES", "CommunicationLogger",
           "BackupAndRestore",
           "communication_stats"]
