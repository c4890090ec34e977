"""exchange/sharded.py: buckets by owner i mod M, a vote per shard, the
shard votes back; without overflow the all-gather's update exactly;
overflowing codes are marked unsent (they go back to the memory)."""

import numpy as np
import pytest
import tensorflow as tf

from fakes import dense, exchange_setup, random_codes
from tf_sparsesign import policy
from tf_sparsesign.aggregation.exchange.allgather import AllGatherExchange
from tf_sparsesign.aggregation.exchange.sharded import ShardedExchange


@pytest.mark.parametrize("wire,vote", [("int32", "plain"), ("rice", "plain"),
                                       ("int32", "weighted")])
def test_exact_downlink_equals_the_allgather(wire, vote):
    rng = np.random.default_rng(0)
    n, k, m = 400, 10, 4
    sharded = ShardedExchange(exchange_setup(n, k, m, wire, vote=vote,
                                             shard_capacity=4.0))
    gather = AllGatherExchange(exchange_setup(n, k, m, wire, vote=vote))
    assert sharded.gives_back and not gather.gives_back
    codes = [random_codes(rng, n, k) for _ in range(m)]
    msgs = [sharded.message(tf.constant(c), None) for c in codes]
    assert all(bool(tf.reduce_all(msg.kept)) for msg in msgs)
    assert msgs[0].words.shape == (m, 1 + sharded.codec.words)
    got = sharded.host_step([msg.words for msg in msgs])
    want = gather.host_step([gather.message(tf.constant(c), None).words
                             for c in codes])
    np.testing.assert_array_equal(dense(got.update, n),
                                  dense(want.update, n))
    if vote == "weighted":  # the learning rule learned the same
        np.testing.assert_array_equal(sharded.rule.agree.numpy(),
                                      gather.rule.agree.numpy())


def test_overflowing_codes_are_not_kept():
    n, k, m = 40, 8, 2
    ex = ShardedExchange(exchange_setup(n, k, m))
    assert ex.capacity == policy.bucket_capacity(k, m) == 5
    codes = np.array([(i * 2) << 1 for i in range(8)], np.int32)  # all even
    kept = ex.message(tf.constant(codes), None).kept.numpy()
    # all 8 belong to shard 0, whose bucket holds 5 (index order kept)
    np.testing.assert_array_equal(kept, [True] * 5 + [False] * 3)


def test_wire_is_the_policy_byte_model():
    rng = np.random.default_rng(2)
    n, k, m = 1000, 20, 4
    ex = ShardedExchange(exchange_setup(n, k, m, "rice", downlink="topk"))
    msgs = [ex.message(tf.constant(random_codes(rng, n, k)), None)
            for _ in range(m)]
    result = ex.host_step([msg.words for msg in msgs])
    own, sent, _ = (int(x) for x in ex.wire(msgs[0].words,
                                            result.down_words))
    model = policy.exchange_bytes(n, k, m, "rice", "sharded", "topk")
    assert (own, sent) == (model["message"], model["sent"])


def test_values_are_refused():
    with pytest.raises(ValueError, match="cannot carry values"):
        ShardedExchange(exchange_setup(10, 2, 2, with_values=True))
