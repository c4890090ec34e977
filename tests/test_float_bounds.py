"""tests/float_bounds.py: the rounding bounds the cross-path comparisons use
hold for TensorFlow's own float32 kernels (eager, traced, fused, any batch
split) and are tight enough to catch a real difference."""

import numpy as np
import tensorflow as tf
import keras

import float_bounds as fb


def test_tanh_kernels_within_the_assumed_relative_error():
    """Eager tanh, traced tanh and the tanh of a Dense layer in a traced
    function (kernel 1, bias 0: the matmul is exact) are within
    TANH_REL * u relative of float64 tanh, on a million float32 values
    spread evenly over their bit patterns in 1e-6 < |z| < 12 and a grid."""
    rng = np.random.default_rng(0)
    lo, hi = np.array([1e-6, 12], np.float32).view(np.int32)
    z = rng.integers(lo, hi, 500_000, dtype=np.int32).view(np.float32)
    z = np.concatenate([z, -z, np.linspace(-12, 12, 20_001, dtype=np.float32)])
    z = z[z != 0]
    want = np.tanh(z.astype(np.float64))
    layer = keras.layers.Dense(1, activation="tanh",
                               kernel_initializer="ones")
    layer.build((None, 1))
    for got in (tf.math.tanh(z).numpy(), tf.function(tf.math.tanh)(z),
                tf.function(layer)(z[:, None])[:, 0]):
        rel = np.abs(np.asarray(got, np.float64) - want) / np.abs(want)
        assert rel.max() <= fb.TANH_REL * fb.U, rel.max() / fb.U


def mlp_weights(rng, sizes):
    out = []
    for a, b in zip(sizes, sizes[1:]):
        out += [rng.standard_normal((a, b)).astype(np.float32),
                rng.standard_normal(b).astype(np.float32)]
    return out


def test_forward_bound_holds_for_every_batch_split_and_is_tight():
    rng = np.random.default_rng(0)
    weights = mlp_weights(rng, [6, 8, 2])
    x = (3 * rng.standard_normal((64, 6))).astype(np.float32)
    _, out = fb.mlp_forward(weights, x)
    model = keras.Sequential([keras.Input((6,)),
                              keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dense(2)])
    model.set_weights(weights)
    w1, b1, w2, b2 = weights
    numpy32 = np.tanh(x @ w1 + b1).astype(np.float32) @ w2 + b2
    evaluations = [numpy32, model(x).numpy()] + [
        model.predict(x, batch_size=b, verbose=0) for b in (1, 8, 64)]
    for got in evaluations:
        fb.assert_within(got, out.value, out.err, "forward")
    # tight: far below a change of one weight by 1e-3
    moved = [w.copy() for w in weights]
    moved[2][0, 0] += 1e-3
    _, other = fb.mlp_forward(moved, x)
    assert np.max(np.abs(other.value - out.value) - 2 * out.err) > 0


def test_gradient_bound_holds_for_tensorflow_gradients_and_is_tight():
    rng = np.random.default_rng(1)
    weights = mlp_weights(rng, [5, 4, 3])
    x = rng.standard_normal((8, 5)).astype(np.float32)
    y = rng.standard_normal((8, 3)).astype(np.float32)
    bounds = fb.mlp_mse_gradients(weights, x, y, replicas=4)
    model = keras.Sequential([keras.Input((5,)),
                              keras.layers.Dense(4, activation="tanh"),
                              keras.layers.Dense(3)])
    model.set_weights(weights)

    def grads(xb, yb):
        with tf.GradientTape() as tape:
            loss = keras.losses.MeanSquaredError()(yb, model(xb)) / 4
        return tape.gradient(loss, model.trainable_variables)

    for fn in (grads, tf.function(grads)):
        for g, b in zip(fn(x, y), bounds):
            fb.assert_within(g.numpy(), b.value, b.err, "gradient")
    for b in bounds:  # tight: far below the gradients themselves
        assert np.all(b.err < 1e-4 * np.abs(b.value).max())


def test_rsqrt_within_the_assumed_relative_error():
    rng = np.random.default_rng(1)
    lo, hi = np.array([1e-6, 1e6], np.float32).view(np.int32)
    v = rng.integers(lo, hi, 1_000_000, dtype=np.int32).view(np.float32)
    want = 1 / np.sqrt(v.astype(np.float64))
    for got in (tf.math.rsqrt(v).numpy(), tf.function(tf.math.rsqrt)(v)):
        rel = np.abs(np.asarray(got, np.float64) - want) / want
        assert rel.max() <= fb.RSQRT_REL * fb.U, rel.max() / fb.U
