"""The public names that need TensorFlow, imported by the package's
``__init__``. Importing this module imports TensorFlow and Keras and
registers :class:`~tf_sparsesign.SparseSignOptimizer` with Keras (so
``keras.models.load_model`` can read files that hold it)."""

from . import ops
from .accounting import communication_stats
from .calibration import calibrate
from .config import VOTE_MODES, SparseSignConfig
from .integration.callbacks import BackupAndRestore, CommunicationLogger
from .integration.optimizer import SparseSignOptimizer
from .integration.strategy import (MultiWorkerSparseSignStrategy,
                                   SparseSignStrategy)
from .ops import majority_vote, sparse_sign_encode
from .trials import trial

__all__ = ["ops", "sparse_sign_encode", "majority_vote",
           "SparseSignStrategy", "MultiWorkerSparseSignStrategy",
           "SparseSignOptimizer", "SparseSignConfig", "VOTE_MODES",
           "CommunicationLogger",
           "BackupAndRestore", "communication_stats", "trial",
           "calibrate"]
