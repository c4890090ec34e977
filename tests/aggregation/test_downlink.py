"""exchange/downlink.py: a shard's vote as exact Rice, packed ternary or
its top-K, decoded into the global update."""

import numpy as np
import pytest
import tensorflow as tf

from tf_sparsesign.aggregation.exchange import downlink as downlink_lib
from tf_sparsesign.aggregation.interfaces import SparseUpdate


def shard_update(indices, values, scores=None):
    return SparseUpdate(tf.constant(indices, tf.int32),
                        tf.constant(values, tf.float32),
                        None if scores is None else
                        tf.constant(scores, tf.float32))


@pytest.mark.parametrize("cls", [downlink_lib.ExactRice,
                                 downlink_lib.ExactTernary])
def test_exact_formats_round_trip(cls):
    m, shard = 2, 10
    part = cls(shard, 10, m)
    ups = [shard_update([1, 4], [1.0, -1.0]), shard_update([0, 9],
                                                           [-1.0, 1.0])]
    words = [part.encode(u) for u in ups]
    longest = max(int(w.shape[0]) for w in words)
    rows = tf.stack([tf.pad(w, [[0, longest - w.shape[0]]]) for w in words])
    update, valid = part.decode(rows)
    # shard b holds global coordinates b, b + M, ...: local i -> i*M + b
    np.testing.assert_array_equal(update.indices, [1, 2, 8, 19])
    np.testing.assert_array_equal(update.values, [-1, 1, -1, 1])
    assert valid.numpy().all()


def test_topk_keeps_the_strongest_votes_of_a_shard():
    part = downlink_lib.TopK(10, 2, 1)
    assert part.fixed_words is not None
    words = part.encode(shard_update([1, 3, 5], [1.0, -1.0, 1.0],
                                     [1.0, 3.0, 2.0]))
    update, _ = part.decode(words[None])
    np.testing.assert_array_equal(update.indices, [3, 5])


def test_a_bad_ternary_message_raises_or_abstains():
    rows = tf.fill([2, 1], -1)  # bytes 255
    with pytest.raises(tf.errors.InvalidArgumentError, match="above 242"):
        downlink_lib.ExactTernary(4, 0, 2, "raise").decode(rows)
    _, valid = downlink_lib.ExactTernary(4, 0, 2, "drop").decode(rows)
    assert not valid.numpy().any()


def test_make_follows_the_policy_format():
    assert isinstance(downlink_lib.make(10**6, 10**4, 4, "topk", 1.25),
                      downlink_lib.TopK)
    assert isinstance(downlink_lib.make(100, 100, 8, "exact", 1.25),
                      downlink_lib.ExactTernary)
    assert isinstance(downlink_lib.make(10**7, 10**3, 4, "exact", 1.25),
                      downlink_lib.ExactRice)
