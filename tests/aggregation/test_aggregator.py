"""aggregator.py + build.py: one step of the whole aggregation on one
replica (the default strategy), against NumPy S3GD-MV: encode with error
feedback, vote, x -= lr * vote; counters from the real message."""

import numpy as np
import tensorflow as tf

import oracle
from tf_sparsesign.aggregation.build import build_aggregator
from tf_sparsesign.aggregation.probe import ScratchFactory, variable_key
from tf_sparsesign.config import SparseSignConfig


def test_one_replica_step_is_numpy_s3gd_mv():
    rng = np.random.default_rng(0)
    w0 = [rng.standard_normal((4, 5)).astype(np.float32),
          rng.standard_normal(5).astype(np.float32)]
    vs = [tf.Variable(w) for w in w0]
    lr = 0.1
    agg = build_aggregator(SparseSignConfig(density=0.2), vs, 1,
                           ScratchFactory(), variable_key,
                           learning_rate=lambda: lr)
    assert agg.ks == [4, 1] and agg.owner is None and agg.routed_calls == 0
    memories = [np.zeros_like(w) for w in w0]
    weights = [w.copy() for w in w0]
    for _ in range(3):
        g = [rng.standard_normal(w.shape).astype(np.float32) for w in w0]
        left = agg.aggregate([(tf.constant(x), v) for x, v in zip(g, vs)])
        assert left == []  # sparse SGD applied it
        for i, (x, k) in enumerate(zip(g, agg.ks)):
            e = memories[i] + x
            codes = oracle.encode(e, k)
            memories[i] = oracle.residual(e, codes)
            vote, _ = oracle.vote(codes[None], e.size)
            weights[i] = weights[i] - np.float32(lr) * vote.reshape(e.shape)
    for v, w, mem, tracked in zip(vs, weights, memories, agg.state.memories):
        np.testing.assert_array_equal(v.numpy(), w)
        np.testing.assert_array_equal(tracked.numpy(), mem)
    counters = agg.state.read_counters()
    assert counters["steps"] == 3
    assert counters["message_bytes"] == 4 * (1 + sum(agg.ks))


def test_a_wrapped_optimizer_gets_dense_gradients():
    vs = [tf.Variable(tf.zeros([6]))]
    agg = build_aggregator(SparseSignConfig(density=0.5), vs, 1,
                           ScratchFactory(), variable_key)
    out = agg.aggregate([(tf.constant([1.0, -5, 0, 3, 0, 0.5]), vs[0])])
    np.testing.assert_array_equal(out[0][0], [1, -1, 0, 1, 0, 0])
    assert out[0][1] is vs[0]


def test_the_dense_baseline_counts_a_ring_all_reduce():
    vs = [tf.Variable(tf.zeros([10]))]
    agg = build_aggregator(SparseSignConfig(dense=True), vs, 1,
                           ScratchFactory(), variable_key)
    out = agg.aggregate([(tf.ones([10]), vs[0])])
    np.testing.assert_array_equal(out[0][0], np.ones(10))
    assert agg.state.read_counters()["steps"] == 1
