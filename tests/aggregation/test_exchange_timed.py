"""exchange/timed.py: contenders run in alternation for the trial, then
the fastest stays; whichever runs, the update is the same."""

import numpy as np
import tensorflow as tf

import oracle
from fakes import exchange_setup, random_codes
from tf_sparsesign.aggregation.exchange.allgather import AllGatherExchange
from tf_sparsesign.aggregation.exchange.collectives import LOCAL
from tf_sparsesign.aggregation.exchange.sharded import ShardedExchange
from tf_sparsesign.aggregation.exchange.timed import ROUNDS, TimedChoice


def variable(name, shape, dtype):
    return tf.Variable(tf.zeros(shape, dtype), name=name)


def test_trial_then_the_fastest_and_always_the_same_update(capfd):
    rng = np.random.default_rng(0)
    n, k, m = 300, 12, 3
    contenders = [AllGatherExchange(exchange_setup(n, k, m, "int32")),
                  AllGatherExchange(exchange_setup(n, k, m, "rice")),
                  ShardedExchange(exchange_setup(n, k, m, "rice",
                                                 shard_capacity=3.0))]
    timed = TimedChoice(contenders, ["allgather/int32", "allgather/rice",
                                     "sharded/rice"], [0.1, 0.2, 0.3],
                        LOCAL, variable)
    assert timed.gives_back

    @tf.function
    def step(codes):
        msgs = [timed.message(codes[r], None) for r in range(m)]
        assert msgs[0].words.shape == timed.message_shape
        result = timed.host_step([msg.words for msg in msgs])
        return result.update.indices, result.update.values, \
            timed.wire(msgs[0].words, result.down_words)

    used = []
    for t in range(timed.trial_steps + 4):
        used.append(int(timed.current()))
        codes = np.stack([random_codes(rng, n, k) for _ in range(m)])
        indices, values, wire = step(tf.constant(codes))
        want, _ = oracle.vote(codes, n)
        got = np.zeros(n, np.float32)
        got[indices.numpy()] = values.numpy()
        np.testing.assert_array_equal(got, want)
        assert int(wire[0]) > 0
    assert used[:timed.trial_steps] == [0, 1, 2] * ROUNDS
    kept = int(timed.choice.numpy())
    assert used[timed.trial_steps:] == [kept] * 4
    assert set(timed.stats()) >= {"auto_exchange",
                                   "auto_allgather/int32_seconds"}
    assert "auto kept exchange" in capfd.readouterr().err
