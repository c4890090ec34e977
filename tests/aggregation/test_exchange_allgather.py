"""exchange/allgather.py: every message to every host; the host step is
read + vote; its bytes are the policy's byte model."""

import numpy as np
import pytest
import tensorflow as tf

import oracle
from fakes import dense, exchange_setup, random_codes
from tf_sparsesign import policy
from tf_sparsesign.aggregation.exchange.allgather import AllGatherExchange


@pytest.mark.parametrize("wire", ["int32", "rice", "packed"])
def test_host_step_votes_every_message(wire):
    rng = np.random.default_rng(0)
    n, k, m = 200, 12, 4
    ex = AllGatherExchange(exchange_setup(n, k, m, wire))
    codes = [random_codes(rng, n, k) for _ in range(m)]
    messages = [ex.message(tf.constant(c), None) for c in codes]
    assert all(msg.kept is None for msg in messages)
    assert messages[0].words.shape == (1 + ex.codec.words,)
    result = ex.host_step([msg.words for msg in messages])
    want, _ = oracle.vote(np.stack(codes), n)
    np.testing.assert_array_equal(dense(result.update, n), want)
    assert int(result.dropped) == 0 and int(result.down_words) == 0
    model = policy.exchange_bytes(n, k, m, wire, "allgather")
    assert ex.wire(messages[0].words, result.down_words) == (
        model["message"], model["sent"], model["received"])


def test_a_foreign_row_abstains_and_is_counted():
    rng = np.random.default_rng(1)
    n, k, m = 50, 5, 3
    ex = AllGatherExchange(exchange_setup(n, k, m, on_invalid="drop"))
    codes = [random_codes(rng, n, k) for _ in range(m)]
    words = [ex.message(tf.constant(c), None).words for c in codes]
    words[2] = tf.concat([[123], words[2][1:]], 0)  # another fingerprint
    result = ex.host_step(words)
    want, _ = oracle.vote(np.stack(codes[:2]), n)
    np.testing.assert_array_equal(dense(result.update, n), want)
    assert int(result.dropped) == 1


def test_values_are_carried_with_int32_codes():
    ex = AllGatherExchange(exchange_setup(10, 2, 2, vote="plain",
                                          with_values=True))
    assert ex.codec.words == 4 and not ex.gives_back
