"""Collectives of a host step (cross-replica context), on one host or
across workers.

On one host every replica's tensor is already here: gathering is stacking,
all-to-all is transposing, a sum is a sum, and nothing crosses a wire.
Across workers each is **one** collective per local device with static
shapes, launched with the strategy's own keys; how to launch them (private
TensorFlow launchers) is passed in by the integration as ``cross`` (see
``integration/_patches.py``): ``all_gather``, ``all_to_all``,
``all_reduce`` and ``replica_ids``.
"""

from __future__ import annotations

import tensorflow as tf


class HostCollectives:
    """Gather, all-to-all and sum over all replicas in sync; ``local`` is
    always the list of this host's per-replica tensors."""

    def __init__(self, cross):
        self.cross = cross

    @staticmethod
    def _one_host(strategy, local) -> bool:
        return strategy.num_replicas_in_sync == len(local)

    def replica_ids(self, strategy, local) -> list:
        """Global replica ids of this host's replicas, in local order."""
        if self._one_host(strategy, local):
            return list(range(len(local)))
        return self.cross.replica_ids(strategy)

    def gather(self, strategy, local) -> tf.Tensor:
        """``[M, ...]``: every replica's tensor, in replica order."""
        if self._one_host(strategy, local):
            return tf.stack(local)
        return self.cross.all_gather(strategy, [t[None] for t in local])

    def all_to_all(self, strategy, local) -> list:
        """Row j of each local ``[M, ...]`` tensor goes to replica j;
        returns, per local replica, the ``[M, ...]`` rows sent to it (row i
        from replica i)."""
        if self._one_host(strategy, local):
            return [tf.stack([t[j] for t in local])
                    for j in range(len(local))]
        return self.cross.all_to_all(strategy, local)

    def sum(self, strategy, local, host_sum) -> tf.Tensor:
        """The sum over all hosts of ``host_sum`` (this host's part)."""
        if self._one_host(strategy, local):
            return host_sum
        return self.cross.all_reduce(strategy, host_sum, len(local))
