"""The step's host-side ops: the finiteness guard and the sparse SGD write.
Both must do exactly what TensorFlow's own ops do (their fallbacks), and
validate before writing."""

import numpy as np
import pytest
import tensorflow as tf

from tf_sparsesign import ops
from tf_sparsesign.ops import step as step_ops
from tf_sparsesign.ops.step import nd_index

DTYPES = ["float16", "bfloat16", "float32", "float64"]


@pytest.fixture(params=["compiled", "reference"])
def impl(request, monkeypatch, compiled):
    """Runs a test with the compiled kernels and with TensorFlow's ops
    (the fallback without the op library, and on GPU)."""
    if request.param == "reference":
        monkeypatch.setattr(step_ops._library, "load", lambda: None)
    return request.param


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (7,), (5, 9), (3, 4, 6)], ids=str)
def test_scatter_sub_equals_scatter_nd_sub(impl, dtype, shape):
    rng = np.random.default_rng(len(shape))
    init = rng.standard_normal(shape).astype(np.float32)
    n = init.size
    flat = np.sort(rng.choice(n, size=max(1, n // 3), replace=False))
    updates = tf.cast(rng.standard_normal(flat.size) * 0.37, dtype)
    ours = tf.Variable(tf.cast(init, dtype))
    theirs = tf.Variable(tf.cast(init, dtype))
    ops.scatter_sub(ours, flat.astype(np.int32), updates)
    if shape:
        theirs.scatter_nd_sub(nd_index(tf.constant(flat, tf.int32), shape),
                              updates)
    else:  # TensorFlow's scatter rejects scalars: the same subtraction
        theirs.assign_sub(updates[0])
    a = np.atleast_1d(ours.numpy())
    b = np.atleast_1d(theirs.numpy())
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


def test_scatter_sub_in_a_tf_function_and_repeated(impl):
    v = tf.Variable(tf.zeros([4, 5]))

    @tf.function
    def step(i, u):
        ops.scatter_sub(v, i, u)

    for _ in range(3):
        step(tf.constant([0, 19], tf.int32), tf.constant([1.0, -2.0]))
    expect = np.zeros(20, np.float32)
    expect[0], expect[19] = -3.0, 6.0
    np.testing.assert_array_equal(v.numpy().reshape(-1), expect)


@pytest.mark.parametrize("bad", [[0, 12], [-1], [3, 2**31 - 1]], ids=str)
def test_scatter_sub_out_of_range_writes_nothing(impl, bad):
    v = tf.Variable(np.arange(12, dtype=np.float32).reshape(3, 4))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"outside the variable's 12 elements.*nothing "
                             r"was written"):
        ops.scatter_sub(v, tf.constant(bad, tf.int32),
                        tf.ones([len(bad)]))
    np.testing.assert_array_equal(v.numpy().reshape(-1), np.arange(12))


def test_scatter_sub_length_mismatch(impl):
    v = tf.Variable(tf.zeros([4]))
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError),
                       match="indices and updates|Dimensions must be equal|"
                             "must match"):
        ops.scatter_sub(v, tf.constant([0, 1]), tf.constant([1.0]))


def test_scatter_sub_keeps_earlier_reads(impl):
    """A value read before the update (aliasing the buffer) is not changed
    by it: the kernel copies a shared buffer before writing."""
    v = tf.Variable(tf.ones([1000]))
    before = v.read_value()
    ops.scatter_sub(v, tf.constant([3]), tf.constant([1.0]))
    assert before.numpy()[3] == 1.0
    assert v.numpy()[3] == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_finite_passes_finite_values_unchanged(impl, dtype):
    x = tf.cast(np.linspace(-3e4, 3e4, 200001), dtype)
    y = ops.check_finite(x, "grad")
    np.testing.assert_array_equal(tf.cast(y, tf.float64).numpy(),
                                  tf.cast(x, tf.float64).numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value,word", [(np.nan, "nan"), (np.inf, "inf"),
                                        (-np.inf, "-inf")])
def test_check_finite_reports_count_and_first(impl, dtype, value, word):
    # three chunks of the kernel's 65,536 entries; the first bad one is in
    # the second chunk, another in the third
    x = np.zeros(200000)
    x[150000] = x[70001] = value
    x[199999] = value
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        ops.check_finite(tf.cast(x, dtype), "the gradient of 'w' is bad")
    text = str(info.value)
    if impl == "reference":  # TensorFlow's check_numerics: its own words
        assert "the gradient of 'w' is bad" in text
        return
    assert f"the first, at flat index 70001, is {word})" in text
    assert "the gradient of 'w' is bad (3 of 200000" in text
    # TensorFlow's own check rejects exactly the same inputs
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.debugging.check_numerics(tf.cast(x, dtype), "x")


def test_check_finite_rejects_non_float(impl):
    with pytest.raises(TypeError, match="got int32"):
        ops.check_finite(tf.constant([1, 2]), "m")
