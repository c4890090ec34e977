"""sparse_sign_encode: compiled op and reference against the NumPy oracle."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tf_sparsesign import ops, reference

import oracle

DTYPES = [tf.float16, tf.bfloat16, tf.float32, tf.float64]
SPECIAL = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, np.inf, -np.inf, 1e-30]


def encode_compiled(x, k, residual=False):
    return ops.sparse_sign_encode(x, k, return_residual=residual)


def encode_reference(x, k, residual=False):
    return reference.sparse_sign_encode(tf.convert_to_tensor(x), k, residual)


IMPLS = [pytest.param(encode_compiled, id="compiled"),
         pytest.param(encode_reference, id="reference")]


@st.composite
def tensors(draw):
    shape = draw(st.lists(st.integers(1, 6), min_size=0, max_size=4))
    n = int(np.prod(shape)) if shape else 1
    pool = draw(st.sampled_from(["ties", "normal", "mixed"]))
    if pool == "ties":
        vals = draw(st.lists(st.sampled_from(SPECIAL), min_size=n,
                             max_size=n))
    elif pool == "normal":
        vals = draw(st.lists(st.floats(-1e3, 1e3, width=16), min_size=n,
                             max_size=n))
    else:
        vals = draw(st.lists(st.one_of(st.sampled_from(SPECIAL),
                                       st.floats(-4, 4, width=16)),
                             min_size=n, max_size=n))
    dtype = draw(st.sampled_from(DTYPES))
    x = np.array(vals, np.float64).reshape(shape)
    nnz = int(np.count_nonzero(x))
    k = draw(st.sampled_from(sorted({0, 1 if n else 0, n, min(n, nnz + 1),
                                     min(n, nnz), n // 2})))
    return x, dtype, k


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(tensors())
def test_matches_oracle_all_dtypes_shapes(compiled, case):
    x_np, dtype, k = case
    x = tf.constant(x_np, dtype=dtype)
    expect = oracle.encode(x.numpy(), k)
    for impl in (encode_compiled, encode_reference):
        codes, res = impl(x, k, residual=True)
        np.testing.assert_array_equal(codes.numpy(), expect)
        assert res.dtype == dtype and res.shape == x.shape
        np.testing.assert_array_equal(
            res.numpy().astype(np.float64),
            oracle.residual(x.numpy(), expect).astype(np.float64))
        np.testing.assert_array_equal(impl(x, k).numpy(), expect)


@pytest.mark.parametrize("impl", IMPLS)
def test_hand_worked(compiled, impl):
    x = tf.constant([[0.5, -3.0], [0.0, 2.0]])
    np.testing.assert_array_equal(impl(x, 2).numpy(), [3, 6])
    # ties: lower index wins; -0.0 is zero; padding at the tail
    x = tf.constant([1.0, -1.0, -0.0, 1.0, 0.0])
    np.testing.assert_array_equal(impl(x, 2).numpy(), [0, 3])
    np.testing.assert_array_equal(impl(x, 5).numpy(), [0, 3, 6, -1, -1])
    # +-inf are the largest magnitudes
    x = tf.constant([1e30, -np.inf, 5.0, np.inf], tf.float32)
    np.testing.assert_array_equal(impl(x, 2).numpy(), [3, 6])
    # scalar input
    np.testing.assert_array_equal(impl(tf.constant(-2.0), 1).numpy(), [1])
    np.testing.assert_array_equal(impl(tf.constant(0.0), 1).numpy(), [-1])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_is_an_error(compiled, impl, dtype):
    x = tf.constant([1.0, np.nan, 2.0], dtype)
    for k in (0, 1, 3):
        with pytest.raises(tf.errors.InvalidArgumentError, match="NaN"):
            impl(x, k)


def test_bad_arguments_are_clear(compiled):
    x = tf.constant([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"0 <= k <= N = 3, got k = 4"):
        ops.sparse_sign_encode(x, 4)
    with pytest.raises(ValueError, match="got k = -1"):
        ops.sparse_sign_encode(x, -1)
    with pytest.raises(TypeError, match="Python int"):
        ops.sparse_sign_encode(x, tf.constant(1))
    with pytest.raises(TypeError, match="got int32"):
        ops.sparse_sign_encode(tf.constant([1, 2]), 1)


def test_dynamic_shape_k_too_large_fails_at_run_time(compiled):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def f(x):
        return ops.sparse_sign_encode(x, 3)

    np.testing.assert_array_equal(f(tf.constant([1.0, -2.0, 3.0])), [0, 3, 4])
    with pytest.raises(tf.errors.InvalidArgumentError, match="k = 3"):
        f(tf.constant([1.0, 2.0]))


def test_too_many_elements_rejected_with_limit(compiled):
    x = tf.zeros([1 << 15, 1 << 15], tf.float16)  # 2**30 elements, 2 GiB
    with pytest.raises(ValueError, match=r"2\*\*30"):
        ops.sparse_sign_encode(x, 1)


def test_no_gradient(compiled):
    x = tf.Variable([1.0, -2.0])
    with tf.GradientTape() as tape:
        codes = ops.sparse_sign_encode(x, 1)
    assert codes.dtype == tf.int32
    with tf.GradientTape() as tape:
        _, res = ops.sparse_sign_encode(x, 1, return_residual=True)
        y = tf.reduce_sum(res)
    assert tape.gradient(y, x) is None  # registered as not differentiable


@pytest.mark.parametrize("n,k", [(70_000, 700), (300_001, 300),
                                 (1_000_000, 10_000), (1_000_000, 1)])
@pytest.mark.parametrize("kind", ["normal", "ties", "constant", "spiky"])
def test_large_inputs_all_paths(compiled, n, k, kind):
    """Sizes above the direct path: sampled bracket and radix fallback."""
    rng = np.random.default_rng(n + k)
    if kind == "normal":
        x = rng.standard_normal(n).astype(np.float32)
    elif kind == "ties":
        x = rng.integers(-3, 4, n).astype(np.float32)
    elif kind == "constant":
        x = np.full(n, -0.25, np.float32)
    else:  # a misleading sample: the big values hide between samples
        x = (np.arange(n) % 13).astype(np.float32) * 1e-3
        x[::997] = 1e6
    codes, res = ops.sparse_sign_encode(x, k, return_residual=True)
    expect = oracle.encode(x, k)
    np.testing.assert_array_equal(codes.numpy(), expect)
    np.testing.assert_array_equal(res.numpy(), oracle.residual(x, expect))
    np.testing.assert_array_equal(encode_reference(x, k).numpy(), expect)


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float64])
def test_large_other_dtypes(compiled, dtype):
    rng = np.random.default_rng(3)
    x = tf.constant(rng.standard_normal(200_000), dtype)
    for k in (1, 2_000, 100_000):
        expect = oracle.encode(x.numpy(), k)
        np.testing.assert_array_equal(ops.sparse_sign_encode(x, k).numpy(),
                                      expect)


def test_twenty_million_elements_once(compiled):
    rng = np.random.default_rng(20)
    x = rng.standard_normal(20_000_000).astype(np.float32)
    x[rng.integers(0, x.size, 1000)] = 0.0
    k = 200_000
    codes = ops.sparse_sign_encode(x, k).numpy()
    # Oracle via argpartition (a full sort of 2e7 is slow): exact threshold.
    mag = np.abs(x)
    thr = -np.partition(-mag, k - 1)[k - 1]
    above = np.flatnonzero(mag > thr)
    ties = np.flatnonzero(mag == thr)[: k - above.size]
    chosen = np.sort(np.concatenate([above, ties]))
    np.testing.assert_array_equal(codes, (chosen << 1) | (x[chosen] < 0))


def test_inside_tf_function_and_graph_shapes(compiled):
    @tf.function
    def f(x):
        return ops.sparse_sign_encode(x, 2, return_residual=True)

    codes, res = f(tf.constant([[3.0, -1.0], [0.5, -4.0]]))
    np.testing.assert_array_equal(codes, [0, 7])
    np.testing.assert_array_equal(res, [[0, -1.0], [0.5, 0]])
    cf = f.get_concrete_function(tf.TensorSpec([None, 2], tf.float32))
    assert cf.structured_outputs[0].shape.as_list() == [2]
