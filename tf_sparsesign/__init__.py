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
* :func:`trial` — an A/B trial on your own model: does it pay off?
* :func:`calibrate` — time this cluster's collectives and this host's
  compute once; the profile lets ``plan`` and ``auto`` predict step times.
"""

from . import _program, policy
from ._version import __version__

__all__ = ["__version__", "ops", "policy", "sparse_sign_encode",
           "majority_vote", "SparseSignStrategy",
           "MultiWorkerSparseSignStrategy", "SparseSignOptimizer",
           "SparseSignConfig", "VOTE_MODES", "CommunicationLogger",
           "BackupAndRestore", "communication_stats", "trial",
           "calibrate"]

# Importing tf_sparsesign imports the Keras integration, which registers
# SparseSignOptimizer with Keras: `import tf_sparsesign` then
# `keras.models.load_model("m.keras")` must keep working, so this import is
# not lazy. The one exception is the `tf-sparsesign plan` program's own
# process (`tf-sparsesign plan ...`, `python -m tf_sparsesign plan ...`):
# plan is arithmetic and imports no TensorFlow; there these names load on
# first use. How the process is recognised, and why: tf_sparsesign/_program.py.
if not _program.light_command():
    from ._api import (BackupAndRestore, CommunicationLogger,
                       MultiWorkerSparseSignStrategy, SparseSignConfig,
                       SparseSignOptimizer, SparseSignStrategy,
                       VOTE_MODES, calibrate, communication_stats,
                       majority_vote, ops, sparse_sign_encode, trial)
else:
    def __getattr__(name):
        if name in __all__:
            from . import _api

            return getattr(_api, name)
        raise AttributeError(f"module {__name__!r} has no attribute "
                             f"{name!r}")
