"""Saving and restoring each replica's error-feedback memory exactly.

A sync-on-read variable restores one value to every replica (replica 0's or
the mean), so the memories are not left to the default checkpointing.
Instead every local replica's memory is written under its own key:

* Keras (``save_weights``, ``.keras`` files, ``BackupAndRestore``): the
  owning optimizer's ``save_own_variables`` adds entries
  ``sparsesign_memory_<slot>_<replica>`` and ``sparsesign_replicas``
  (local replicas, replicas in sync); ``load_own_variables`` reads them.
* ``tf.train.Checkpoint``: :class:`ReplicaMemoryCheckpoint`, tracked by the
  owning optimizer as ``sparsesign_state``, saves one tensor per variable
  stacked over local replicas.

Under multi-worker training each worker holds (and saves) only its own
replicas' memories: give each worker its own backup directory
(:class:`tf_sparsesign.BackupAndRestore` does) and every worker restores
exactly its own. If the number of replicas changed between save and
restore, the memories are reset to zero with a warning (the weights and the
wrapped optimizer's slots are still restored); training continues.
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf
from tensorflow.python.trackable import base as trackable_base

META_KEY = "sparsesign_replicas"
PREFIX = "sparsesign_"


def _memory_key(slot: int, replica: int) -> str:
    return f"sparsesign_memory_{slot}_{replica}"


def _components(variable):
    value = variable.value if hasattr(variable, "value") else variable
    values = getattr(value, "values", None)
    return list(values) if values else [value]


def replica_meta(aggregator) -> np.ndarray:
    local = len(_components(aggregator.memories[0])) if \
        aggregator.memories else 0
    return np.array([local, aggregator.num_replicas], np.int64)


def save_to_store(aggregator, store) -> None:
    """Adds every local replica's memory to a Keras variable store."""
    if not aggregator.memories:
        return
    store[META_KEY] = replica_meta(aggregator)
    for slot, var in enumerate(aggregator.memories):
        for r, component in enumerate(_components(var)):
            store[_memory_key(slot, r)] = np.asarray(component.numpy())


def load_from_store(aggregator, store) -> None:
    """Restores the memories saved by :func:`save_to_store`."""
    if not aggregator.memories:
        return
    keys = set(store.keys())
    if META_KEY not in keys:
        _reset(aggregator, "the checkpoint has no tf_sparsesign memories")
        return
    saved = tuple(int(v) for v in np.asarray(store[META_KEY]))
    mine = tuple(int(v) for v in replica_meta(aggregator))
    if saved != mine:
        _reset(aggregator, f"it was saved with (local replicas, replicas in "
                           f"sync) = {saved}, this job has {mine}")
        return
    for slot, var in enumerate(aggregator.memories):
        for r, component in enumerate(_components(var)):
            component.assign(np.asarray(store[_memory_key(slot, r)]))


def without_our_keys(store) -> dict:
    """The store as Keras' own loader expects it (our keys removed)."""
    return {k: store[k] for k in store.keys() if not k.startswith(PREFIX)}


def _reset(aggregator, why: str) -> None:
    warnings.warn(
        f"tf_sparsesign: error-feedback memories reset to zero because {why}."
        " Weights and optimizer slots were restored; training continues "
        "with fresh memories.", UserWarning, stacklevel=3)
    for var in aggregator.memories:
        for component in _components(var):
            component.assign(tf.zeros_like(component))


class ReplicaMemoryCheckpoint(trackable_base.Trackable):
    """``tf.train.Checkpoint`` support: one tensor per variable, stacked
    over the local replicas, plus the replica counts."""

    def __init__(self, aggregator):
        self._aggregator = aggregator

    def _serialize_to_tensors(self):
        agg = self._aggregator
        tensors = {"replicas": tf.constant(replica_meta(agg))}
        for slot, var in enumerate(agg.memories):
            tensors[f"memory_{slot}"] = tf.stack(
                [tf.identity(c) for c in _components(var)])
        return tensors

    def _restore_from_tensors(self, restored_tensors):
        agg = self._aggregator
        saved = tuple(int(v) for v in restored_tensors["replicas"].numpy())
        mine = tuple(int(v) for v in replica_meta(agg))
        if saved != mine:
            _reset(agg, f"it was saved with (local replicas, replicas in "
                        f"sync) = {saved}, this job has {mine}")
            return tf.no_op()
        for slot, var in enumerate(agg.memories):
            stacked = restored_tensors[f"memory_{slot}"]
            for r, component in enumerate(_components(var)):
                component.assign(stacked[r])
        return tf.no_op()
