"""Collectives across workers with the strategy's own launchers: static
shapes, one op per local device, the strategy's keys and ordering token."""

from __future__ import annotations

import types

import tensorflow as tf


def _launchers(strategy, count: int) -> list:
    """The strategy's collective launcher of each local device."""
    ops = getattr(strategy.extended, "_cross_device_ops", None)
    launchers = getattr(ops, "_launchers", None)
    if not launchers or len(launchers) != count:
        raise RuntimeError(
            "tf_sparsesign: this multi-worker strategy has no collective "
            f"launcher per local device (found {type(ops).__name__}); use "
            "MultiWorkerMirroredStrategy or MultiWorkerSparseSignStrategy")
    return launchers


def collective_all_gather(strategy, local_rows) -> tf.Tensor:
    """One ``CollectiveGatherV2`` per local device, with the strategy's own
    group key, a fresh instance key and its ordering token (without the
    token, collectives with fixed keys hang), and no shape round first
    (unlike ``ReplicaContext.all_gather``). Returns every replica's rows
    (each local launch returns them all)."""
    return [launcher._all_gather(rows, None) for launcher, rows in zip(
        _launchers(strategy, len(local_rows)), local_rows)][0]


def collective_all_to_all(strategy, local) -> list:
    """One ``CollectiveAllToAllV2`` per local device (row j to replica j),
    launched like :func:`collective_all_gather`; on CPU it works across
    worker processes, on GPU it maps to NCCL when asked for."""
    from tensorflow.python.ops import collective_ops

    out = []
    for launcher, t in zip(_launchers(strategy, len(local)), local):
        options = launcher._options
        with tf.device(launcher._device):
            out.append(collective_ops.all_to_all_v2(
                t, launcher._group_size, launcher._group_key,
                launcher._next_instance_key(),
                communication_hint=options.implementation.value,
                timeout=options.timeout_seconds,
                ordering_token=launcher._get_ordering_token()))
    return out


def collective_all_reduce(strategy, host_sum, count: int) -> tf.Tensor:
    """The sum of ``host_sum`` over all workers (each local device adds it
    once, the first local one the host's sum, the others zeros)."""
    launchers = _launchers(strategy, count)
    parts = [host_sum] + [tf.zeros_like(host_sum)] * (count - 1)
    return [launcher.all_reduce(t) for launcher, t in zip(launchers,
                                                          parts)][0]


def local_replica_ids(strategy) -> list:
    """Global replica ids of this worker's devices, in local order."""
    extended = strategy.extended
    per_worker = len(extended.worker_devices)
    return [extended._id_in_cluster * per_worker + d
            for d in range(per_worker)]


#: Collectives across workers, for the aggregation's host step.
CROSS_WORKER = types.SimpleNamespace(
    all_gather=collective_all_gather, all_to_all=collective_all_to_all,
    all_reduce=collective_all_reduce, replica_ids=local_replica_ids)
