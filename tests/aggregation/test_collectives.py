"""exchange/collectives.py: on one host gathering is stacking, all-to-all
is transposing, a sum is a sum; across workers the launcher is called."""

import numpy as np
import tensorflow as tf

from tf_sparsesign.aggregation.exchange.collectives import (LOCAL,
                                                            HostCollectives)


def test_local_collectives():
    local = [tf.constant([[0, 1], [2, 3]]), tf.constant([[4, 5], [6, 7]])]
    np.testing.assert_array_equal(LOCAL.gather(local), np.stack(local))
    swapped = LOCAL.all_to_all(local)
    np.testing.assert_array_equal(swapped[0], [[0, 1], [4, 5]])
    np.testing.assert_array_equal(swapped[1], [[2, 3], [6, 7]])
    assert LOCAL.replica_ids(local) == [0, 1]
    assert int(LOCAL.sum(local, tf.constant(3))) == 3


class FakeStrategy:
    num_replicas_in_sync = 4


class Cross:
    """Records what the host collectives launch across workers."""

    def __init__(self):
        self.calls = []

    def all_gather(self, strategy, rows):
        self.calls.append("all_gather")
        return tf.concat(rows * 2, 0)

    def all_to_all(self, strategy, local):
        self.calls.append("all_to_all")
        return local

    def all_reduce(self, strategy, host_sum, count):
        self.calls.append(("all_reduce", count))
        return host_sum * 2

    def replica_ids(self, strategy):
        return [2, 3]


def test_across_workers_the_launchers_are_called():
    cross = Cross()
    host = HostCollectives(FakeStrategy(), cross)
    local = [tf.constant([1]), tf.constant([2])]  # 2 of 4 replicas here
    assert host.gather(local).shape == (4, 1)
    host.all_to_all(local)
    assert int(host.sum(local, tf.constant(5))) == 10
    assert host.replica_ids(local) == [2, 3]
    assert cross.calls == ["all_gather", "all_to_all", ("all_reduce", 2)]


def test_on_one_host_nothing_is_launched():
    cross = Cross()

    class One:
        num_replicas_in_sync = 2

    host = HostCollectives(One(), cross)
    host.gather([tf.constant([1]), tf.constant([2])])
    assert cross.calls == []
