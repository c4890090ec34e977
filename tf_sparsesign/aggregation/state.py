"""The aggregation's state as data, and saving it exactly.

:class:`AggregatorState` holds, per optimizer:

* ``memories`` — one error-feedback memory per variable, one value per
  replica (sync-on-read variables; empty without error feedback);
* ``counters`` — communication counters (:data:`COUNTERS`, int64, and
  those a part adds with :meth:`AggregatorState.add_counter`);
* state a part asks for (a vote rule's statistics), created through
  :meth:`AggregatorState.tracked` and held by that part.

Variables are created by a *factory* the integration passes in (Keras 3
or tf_keras, :class:`~.interfaces.StateFactory`), so nothing here depends
on Keras. Counters and the parts' state are tracked by the owning optimizer and saved with its variables; new state
must not add tracked variables (that would change the optimizer's variable
count, and Keras then skips loading older files): save it with the memories
below instead.

A sync-on-read variable restores one value to every replica (replica 0's
or the mean), so the memories are saved here, each local replica under its
own key:

* Keras stores (``save_weights``, ``.keras`` files, ``BackupAndRestore``):
  :func:`save_to_store` / :func:`load_from_store` add entries
  ``sparsesign_memory_<index>_<replica>`` and ``sparsesign_replicas``
  (local replicas, replicas in sync).
* ``tf.train.Checkpoint``: :func:`checkpoint_tensors` /
  :func:`restore_checkpoint_tensors` (one tensor per variable, stacked over
  the local replicas, and the worker's index), wrapped in a trackable by
  the integration.

Each worker of a multi-worker job saves (and restores) only its own
replicas' memories. If the number of replicas changed between save and
restore, or a worker is handed another worker's checkpoint (one file
restored on every worker), the memories are reset to zero with a warning
(weights and the wrapped optimizer's slots are still restored); training
continues.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import tensorflow as tf

#: Communication counters, per replica: steps, this replica's last message
#: (bytes), cumulative bytes sent / received, what a dense fp32 ring
#: all-reduce would have sent, malformed rows dropped.
COUNTERS = ("steps", "message_bytes", "bytes_sent", "bytes_received",
            "dense_bytes", "dropped_rows")
META_KEY = "sparsesign_replicas"
PREFIX = "sparsesign_"
#: Per-replica state groups besides the memories (see AggregatorState).
GROUPS = ("momentum", "accumulator")


class AggregatorState:
    """Memories and counters of one optimizer's aggregation (and the
    factory for the state its parts create).

    Args:
      factory: creates variables: ``replica_local(reference, name)`` (one
        value per replica, shaped like ``reference``, not tracked) and
        ``tracked(name, shape, dtype)`` (tracked by the optimizer).
      variables: the trainable variables (memories are shaped like them).
      num_replicas: replicas in sync.
      error_feedback: create the memories.
      groups: more per-replica state shaped like the variables, by name
        (:data:`GROUPS`: ``"momentum"`` for worker momentum,
        ``"accumulator"`` for gradient accumulation), saved exactly like
        the memories.
    """

    def __init__(self, factory, variables: Sequence, num_replicas: int,
                 error_feedback: bool, groups: Sequence[str] = ()):
        self.factory = factory
        self.num_replicas = int(num_replicas)
        wanted = (["memory"] if error_feedback else []) + [
            g for g in GROUPS if g in groups]
        unknown = sorted(set(groups) - set(GROUPS))
        if unknown:
            raise ValueError(f"unknown state groups {unknown}; expected "
                             f"some of {GROUPS}")
        #: Per-replica state by group name, one variable per trainable one.
        self.replica_state = {
            group: [factory.replica_local(v, f"sparsesign_{group}")
                    for v in variables] for group in wanted}
        self.counters = {name: self.tracked(f"sparsesign_{name}")
                         for name in COUNTERS}

    @property
    def memories(self) -> list:
        """The error-feedback memories (empty without error feedback)."""
        return self.replica_state.get("memory", [])

    def group(self, name: str) -> list:
        """The per-replica variables of group ``name`` (empty if none)."""
        return self.replica_state.get(name, [])

    def tracked(self, name: str, shape=(), dtype="int64"):
        """A new variable tracked (and saved) with the optimizer's own."""
        return self.factory.tracked(name, shape, dtype)

    def add_counter(self, name: str) -> None:
        """One more counter (a part that needs it, e.g. the sharded
        exchange's ``overflow``), tracked like the others."""
        self.counters[name] = self.tracked(f"sparsesign_{name}")

    def count_step(self, message_bytes, sent, received, dense, dropped,
                   **more):
        """Adds one step to the counters (``message_bytes`` is replaced;
        ``more`` adds to counters made with :meth:`add_counter`)."""
        c = self.counters
        c["steps"].assign_add(tf.constant(1, tf.int64))
        c["message_bytes"].assign(tf.cast(message_bytes, tf.int64))
        for name, value in (("bytes_sent", sent), ("bytes_received",
                                                   received),
                            ("dense_bytes", dense), ("dropped_rows",
                                                     dropped),
                            *more.items()):
            if name in c:
                c[name].assign_add(tf.cast(value, tf.int64))

    def read_counters(self) -> dict:
        """Counter values (replica 0's) as Python ints."""
        return {name: int(components(var)[0].numpy())
                for name, var in self.counters.items()}

    def memory_values(self, index: int) -> list:
        """Each local replica's error-feedback memory of variable
        ``index``."""
        return [tf.convert_to_tensor(c)
                for c in components(self.memories[index])]


def tf_variable(variable):
    """The TensorFlow variable behind a Keras 3 variable (or itself)."""
    return variable if isinstance(variable, tf.Variable) else variable.value


def components(variable) -> list:
    """The per-replica values of a (possibly distributed) variable."""
    values = getattr(tf_variable(variable), "values", None)
    return list(values) if values else [tf_variable(variable)]


def _variables(state: AggregatorState):
    """``(group, index, variable)`` of every per-replica variable."""
    for group, variables in state.replica_state.items():
        for index, var in enumerate(variables):
            yield group, index, var


def replica_meta(state: AggregatorState) -> np.ndarray:
    first = next(_variables(state), None)
    local = len(components(first[2])) if first else 0
    return np.array([local, state.num_replicas], np.int64)


def _store_key(group: str, index: int, replica: int) -> str:
    return f"sparsesign_{group}_{index}_{replica}"


def save_to_store(state: AggregatorState, store) -> None:
    """Adds every local replica's state (memories, momenta, accumulators)
    to a Keras variable store, each under its own key."""
    if not state.replica_state:
        return
    store[META_KEY] = replica_meta(state)
    for group, index, var in _variables(state):
        for r, component in enumerate(components(var)):
            store[_store_key(group, index, r)] = np.asarray(
                component.numpy())


def load_from_store(state: AggregatorState, store) -> None:
    """Restores what :func:`save_to_store` saved; a group the file does not
    hold (saved before it existed) starts from zero with a warning."""
    if not state.replica_state:
        return
    keys = set(store.keys())
    if META_KEY not in keys:
        _reset(state, "the checkpoint has no tf_sparsesign memories")
        return
    if not _same_replicas(state, store[META_KEY]):
        return
    for group in state.replica_state:
        if _store_key(group, 0, 0) not in keys:
            _reset(state, f"the checkpoint has no {group} state", [group])
            continue
        for index, var in enumerate(state.replica_state[group]):
            for r, component in enumerate(components(var)):
                component.assign(np.asarray(
                    store[_store_key(group, index, r)]))


def without_our_keys(store) -> dict:
    """The store as Keras' own loader expects it (our keys removed)."""
    return {k: store[k] for k in store.keys() if not k.startswith(PREFIX)}


def checkpoint_tensors(state: AggregatorState, worker: int = 0) -> dict:
    """``tf.train.Checkpoint`` tensors: the replica counts, the index of
    the worker whose state these are, and one tensor per per-replica
    variable (``memory_<i>``, ``momentum_<i>``, ``accumulator_<i>``),
    stacked over the local replicas."""
    tensors = {"replicas": tf.constant(replica_meta(state)),
               "worker": tf.constant(worker, tf.int64)}
    for group, index, var in _variables(state):
        tensors[f"{group}_{index}"] = tf.stack(
            [tf.identity(c) for c in components(var)])
    return tensors


def checkpoint_structure(state: AggregatorState) -> dict:
    """``{key: (shape, dtype)}`` of :func:`checkpoint_tensors`, read from
    the variables' shapes (no value read: usable while a SavedModel is
    traced)."""
    out = {"replicas": ((2,), tf.int64), "worker": ((), tf.int64)}
    for group, index, var in _variables(state):
        local = components(var)
        out[f"{group}_{index}"] = ((len(local), *var.shape), local[0].dtype)
    return out


def restore_checkpoint_tensors(state: AggregatorState, tensors,
                               worker: int = 0) -> None:
    """Restores what :func:`checkpoint_tensors` saved; another worker's
    state (a multi-worker job restoring one file on every worker) is not
    taken: this worker's is reset instead (files without the worker index
    are taken as they are)."""
    saved = tensors.get("worker")
    if saved is not None and int(saved.numpy()) != worker:
        _reset(state, f"the checkpoint holds worker {int(saved.numpy())}'s "
                      f"memories and this is worker {worker}")
        return
    if not _same_replicas(state, tensors["replicas"].numpy()):
        return
    for group in state.replica_state:
        if f"{group}_0" not in tensors:
            _reset(state, f"the checkpoint has no {group} state", [group])
            continue
        for index, var in enumerate(state.replica_state[group]):
            stacked = tensors[f"{group}_{index}"]
            for r, component in enumerate(components(var)):
                component.assign(stacked[r])


def _same_replicas(state: AggregatorState, saved_meta) -> bool:
    saved = tuple(int(v) for v in np.asarray(saved_meta))
    mine = tuple(int(v) for v in replica_meta(state))
    if saved != mine:
        _reset(state, f"it was saved with (local replicas, replicas in sync)"
                      f" = {saved}, this job has {mine}")
    return saved == mine


def _reset(state: AggregatorState, why: str, groups=None) -> None:
    groups = list(state.replica_state) if groups is None else groups
    what = ("error-feedback memories" if groups == ["memory"] else
            "per-replica state (" + ", ".join(groups) + ")")
    if "memory" in groups and len(groups) > 1:
        what = "error-feedback memories and " + ", ".join(
            g for g in groups if g != "memory")
    warnings.warn(
        f"tf_sparsesign: {what} reset to zero because {why}."
        " Weights and optimizer slots were restored; training continues "
        "with fresh memories.", UserWarning, stacklevel=4)
    for group in groups:
        for var in state.replica_state[group]:
            for component in components(var):
                component.assign(tf.zeros_like(component))
