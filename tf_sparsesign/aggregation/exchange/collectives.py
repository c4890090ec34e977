"""Collectives of a host step (cross-replica context), on one host or
across workers (the :class:`~tf_sparsesign.aggregation.interfaces.
Collectives` contract).

On one host every replica's tensor is already here: gathering is stacking,
all-to-all is transposing, a sum is a sum, and nothing crosses a wire
(:class:`LocalCollectives`; also what tests and timing runs use, with M
messages in hand). Across workers each is **one** collective per local
device with static shapes, launched with the strategy's own keys; how to
launch them (private TensorFlow launchers) is passed in by the integration
as ``cross`` (``integration/_patches/collectives.py``: ``all_gather``,
``all_to_all``, ``all_reduce`` and ``replica_ids``), with the strategy,
when the aggregation is built (:class:`HostCollectives`).
"""

from __future__ import annotations

import tensorflow as tf


class LocalCollectives:
    """Every replica's tensor is in ``local``: stack, transpose, sum."""

    def replica_ids(self, local: list) -> list:
        return list(range(len(local)))

    def gather(self, local: list) -> tf.Tensor:
        return tf.stack(local)

    def all_to_all(self, local: list) -> list:
        return [tf.stack([t[j] for t in local]) for j in range(len(local))]

    def sum(self, local: list, host_sum) -> tf.Tensor:
        return host_sum


LOCAL = LocalCollectives()


class HostCollectives:
    """Gather, all-to-all and sum over all replicas in sync of
    ``strategy``; ``local`` is always the list of this host's per-replica
    tensors. On one host :class:`LocalCollectives`; across workers one
    collective per local device, launched by ``cross``."""

    def __init__(self, strategy, cross):
        self.strategy = strategy
        self.cross = cross

    def _one_host(self, local) -> bool:
        return self.strategy.num_replicas_in_sync == len(local)

    def replica_ids(self, local: list) -> list:
        if self._one_host(local):
            return LOCAL.replica_ids(local)
        return self.cross.replica_ids(self.strategy)

    def gather(self, local: list) -> tf.Tensor:
        if self._one_host(local):
            return LOCAL.gather(local)
        return self.cross.all_gather(self.strategy, [t[None] for t in local])

    def all_to_all(self, local: list) -> list:
        if self._one_host(local):
            return LOCAL.all_to_all(local)
        return self.cross.all_to_all(self.strategy, local)

    def sum(self, local: list, host_sum) -> tf.Tensor:
        if self._one_host(local):
            return LOCAL.sum(local, host_sum)
        return self.cross.all_reduce(self.strategy, host_sum, len(local))
