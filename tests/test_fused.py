"""The aggregation's fused ops and the one-vote-per-host step.

* accumulate_encode (memory += g; encode; clear, in place) equals the three
  unfused steps bit for bit, for every dtype, ties, zeros and bad input;
* sparse_majority_vote scattered into zeros equals majority_vote;
* sparse SGD apply equals the dense-gradient path bit for bit (weights,
  memories), with the plain and the weighted vote and both wire formats.
"""

import numpy as np
import pytest
import tensorflow as tf
import keras
from hypothesis import given, settings
from hypothesis import strategies as st

import tf_sparsesign
from tf_sparsesign import ops
from tf_sparsesign.integration.routing import aggregator_of
from tf_sparsesign.reference import sign as reference

DTYPES = [tf.float16, tf.bfloat16, tf.float32, tf.float64]
UINT = {2: tf.uint16, 4: tf.uint32, 8: tf.uint64}
DEVICES = [f"/cpu:{i}" for i in range(4)]


def bits(t):
    return tf.bitcast(tf.convert_to_tensor(t), UINT[t.dtype.size]).numpy()


def fused_and_reference(m0, g, k, dtype):
    a = tf.Variable(tf.cast(m0, dtype))
    b = tf.Variable(tf.cast(m0, dtype))
    g = tf.cast(g, dtype)
    codes, values = ops.accumulate_encode(a, g, k, return_values=True)
    expect, expect_values = reference.accumulate_encode(b, g, k)
    np.testing.assert_array_equal(bits(values), bits(expect_values))
    return codes.numpy(), expect.numpy(), bits(a.read_value()), \
        bits(b.read_value())


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("n,k", [(1, 1), (7, 3), (1000, 10),
                                 (300_000, 3000), (300_000, 0),
                                 (1_000_003, 10_000)])
def test_accumulate_encode_equals_unfused_steps(compiled, dtype, n, k):
    rng = np.random.default_rng(n + k)
    m0 = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    c, ce, m, me = fused_and_reference(m0, g, k, dtype)
    np.testing.assert_array_equal(c, ce)
    np.testing.assert_array_equal(m, me)


@pytest.mark.parametrize("case", ["ties", "cancel", "zeros", "few-nonzero",
                                  "all-equal", "inf"])
def test_accumulate_encode_edge_cases(compiled, case):
    n, k = 200_000, 2_000
    rng = np.random.default_rng(3)
    m0 = rng.integers(-3, 4, n).astype(np.float32)
    g = rng.integers(-3, 4, n).astype(np.float32)
    if case == "cancel":
        g = -m0
    elif case == "zeros":
        m0[:] = 0
        g[:] = 0
    elif case == "few-nonzero":
        m0[:] = 0
        g[:] = 0
        g[::501] = rng.standard_normal(g[::501].size)
    elif case == "all-equal":  # the sample's bracket cannot split these
        m0[:] = 1.0
        g[:] = -3.0
    elif case == "inf":
        g[::997] = np.inf
    for dtype in (tf.float32, tf.float64):
        c, ce, m, me = fused_and_reference(m0, g, k, dtype)
        np.testing.assert_array_equal(c, ce, err_msg=case)
        np.testing.assert_array_equal(m, me, err_msg=case)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3000), st.data())
def test_accumulate_encode_property(n, data):
    k = data.draw(st.integers(0, n))
    floats = st.floats(-4, 4, width=32, allow_subnormal=False)
    m0 = np.array(data.draw(st.lists(floats, min_size=n, max_size=n)),
                  np.float32)
    g = np.array(data.draw(st.lists(floats, min_size=n, max_size=n)),
                 np.float32)
    c, ce, m, me = fused_and_reference(m0, g, k, tf.float32)
    np.testing.assert_array_equal(c, ce)
    np.testing.assert_array_equal(m, me)


def test_accumulate_encode_bad_input_leaves_memory_unchanged(compiled):
    memory = tf.Variable(tf.ones([4, 5]))
    with pytest.raises(ValueError, match=r"memory has shape \(4, 5\) but the"
                                         r" gradient has \(20,\)"):
        ops.accumulate_encode(memory, tf.ones([20]), 3)
    with pytest.raises(TypeError, match="memory is float32 but the gradient "
                                        "is float64"):
        ops.accumulate_encode(memory, tf.ones([4, 5], tf.float64), 3)
    with pytest.raises(ValueError, match=r"0 <= k <= N = 20, got k = 21"):
        ops.accumulate_encode(memory, tf.ones([4, 5]), 21)

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)])
    def dynamic(g):  # shapes known only at run time: the kernel checks
        return ops.accumulate_encode(memory, g, 3, label="dense/kernel")

    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"variable 'dense/kernel': the memory has shape "
                             r"\[4,5\] but the gradient has \[3,7\]"):
        dynamic(tf.ones([3, 7]))
    np.testing.assert_array_equal(memory.numpy(), np.ones([4, 5]))


def test_accumulate_encode_nan_names_the_variable(compiled):
    g = np.ones(200_000, np.float32)
    g[4321] = np.nan
    memory = tf.Variable(tf.zeros([200_000]))

    @tf.function
    def step():
        return ops.accumulate_encode(memory, tf.constant(g), 10,
                                     label="block/kernel")

    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"variable 'block/kernel': sparse_sign_encode: "
                             r"input contains NaN \(first at flat index 4321"):
        step()


# -- the sparse vote ------------------------------------------------------

@settings(max_examples=120, deadline=None)
@given(st.integers(1, 6), st.integers(0, 12), st.integers(1, 60),
       st.booleans(), st.booleans(), st.data())
def test_sparse_vote_scatters_to_the_dense_vote(m, k, n, weighted, garbage,
                                                data):
    rows = []
    for _ in range(m):
        live = data.draw(st.integers(0, min(k, n)))
        idx = sorted(data.draw(st.lists(st.integers(0, n - 1), min_size=live,
                                        max_size=live, unique=True)))
        row = [(i << 1) | data.draw(st.integers(0, 1)) for i in idx]
        rows.append(row + [-1] * (k - live))
    codes = np.array(rows, np.int32).reshape(m, k)
    if garbage and k:
        codes[data.draw(st.integers(0, m - 1))] = data.draw(
            st.lists(st.integers(-4, 2 * n + 5), min_size=k, max_size=k))
    weights = (np.array(data.draw(st.lists(
        st.floats(-3, 3, width=32, allow_subnormal=False), min_size=m,
        max_size=m)), np.float32) if weighted else None)
    dense, dropped = ops.majority_vote(codes, n, weights, on_invalid="drop")
    indices, votes, sparse_dropped = ops.sparse_majority_vote(
        codes, n, weights, on_invalid="drop")
    scattered = np.zeros(n, np.float32)
    scattered[indices.numpy()] = votes.numpy()
    np.testing.assert_array_equal(scattered, dense.numpy())
    assert np.all(np.diff(indices.numpy()) > 0)
    assert np.all(votes.numpy() != 0)
    assert int(sparse_dropped) == int(dropped)


def test_sparse_vote_raises_like_the_dense_vote(compiled):
    codes = tf.constant([[0, 2], [4, 2]], tf.int32)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"sparse_majority_vote: row 1 \(of 2\) is "
                             r"invalid: code 2 at position 1"):
        ops.sparse_majority_vote(codes, 10)


def test_sparse_vote_reference_matches_compiled(compiled):
    rng = np.random.default_rng(5)
    codes = np.full((4, 50), -1, np.int32)
    for r in range(4):
        idx = np.sort(rng.choice(1000, 40, replace=False))
        codes[r, :40] = (idx << 1) | rng.integers(0, 2, 40)
    w = rng.standard_normal(4).astype(np.float32)
    got = ops.sparse_majority_vote(codes, 1000, w, return_tallies=True)
    ref = reference.sparse_majority_vote(tf.constant(codes), 1000,
                                         tf.constant(w))
    np.testing.assert_array_equal(got[0].numpy(), ref[0].numpy())
    np.testing.assert_array_equal(got[1].numpy(), ref[1].numpy())


# -- sparse apply == dense gradients ----------------------------------------

class DenseSGD(keras.optimizers.SGD):
    """SGD whose update_step is its own: the aggregation then hands it dense
    gradients instead of applying the touched coordinates itself."""

    def update_step(self, gradient, variable, learning_rate):
        super().update_step(gradient, variable, learning_rate)


def train(optimizer_cls, steps=4, **settings):
    strategy = tf_sparsesign.SparseSignStrategy(devices=DEVICES, **settings)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((12,)),
                                  keras.layers.Dense(64, activation="tanh"),
                                  keras.layers.Dense(3)])
        model.compile(optimizer=optimizer_cls(0.05), loss="mse")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((32 * steps, 12)).astype(np.float32)
    y = rng.standard_normal((32 * steps, 3)).astype(np.float32)
    model.fit(x, y, batch_size=32, shuffle=False, verbose=0)
    agg = aggregator_of(model.optimizer)
    memories = [np.stack([m.numpy() for m in agg.state.memory_values(s)])
                for s in range(len(agg.state.memories))]
    return model.get_weights(), memories, agg


@pytest.mark.parametrize("settings", [
    dict(density=0.05), dict(density=0.05, vote="weighted"),
    dict(density=0.05, wire="rice"), dict(density=0.2, error_feedback=False),
    dict(density=0.05, method="topk_values")], ids=str)
def test_sparse_sgd_apply_equals_dense_gradients(settings):
    w_sparse, m_sparse, agg = train(keras.optimizers.SGD, **settings)
    assert type(agg.apply).__name__ == "SparseSGD"
    w_dense, m_dense, agg = train(DenseSGD, **settings)
    assert type(agg.apply).__name__ == "DenseGradients"
    for a, b in zip(w_sparse + m_sparse, w_dense + m_dense):
        np.testing.assert_array_equal(a, b)
