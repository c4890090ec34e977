"""Keras integration: the entry points and their routing into Keras.

* :mod:`.strategy` — ``SparseSignStrategy``, ``MultiWorkerSparseSignStrategy``
* :mod:`.optimizer` — ``SparseSignOptimizer``
* :mod:`.callbacks` — ``CommunicationLogger``, ``BackupAndRestore``
* :mod:`.routing` — which optimizers vote, with what aggregator
* :mod:`.state_factory` — the aggregation's variables, Keras 3 style
* :mod:`._patches` — every private Keras/TensorFlow name touched, the
  supported Keras range, and the guards
"""
