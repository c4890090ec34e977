"""Keras integration: the entry points and their routing into Keras.

* :mod:`.strategy` — ``SparseSignStrategy``, ``MultiWorkerSparseSignStrategy``
* :mod:`.optimizer` — ``SparseSignOptimizer``
* :mod:`.callbacks` — ``CommunicationLogger``, ``BackupAndRestore``
* :mod:`.routing` — which optimizers vote, with what aggregator (both Kerases)
* :mod:`.state_factory` — the aggregation's variables, Keras 3 and tf_keras
* :mod:`.wrapping` — what both optimizer wrappers delegate to the inner one
* :mod:`.keras2` — the Keras 2 (tf_keras) adapter: its wrapper and routes
* :mod:`._patches` — every private Keras 3/TensorFlow name touched, the
  supported Keras range, and the guards
* :mod:`._patches.keras2` — the same for tf_keras
"""
