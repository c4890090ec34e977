"""select/: top-K, random-K and every-sign selectors, against the NumPy
oracle; values only when built to keep them; in place only where
declared."""

import numpy as np
import pytest
import tensorflow as tf

import oracle
from tf_sparsesign.aggregation.select.every_sign import EverySign
from tf_sparsesign.aggregation.select.random_k import RandomK
from tf_sparsesign.aggregation.select.topk import TopK


def test_topk_is_the_oracle_with_residual_and_values():
    rng = np.random.default_rng(0)
    e = rng.standard_normal(50).astype(np.float32)
    e[[3, 7]] = [5.0, -5.0]  # a tie: the lower index first
    chosen = TopK(0, want_values=True).select(tf.constant(e), 5, 0, True)
    want = oracle.encode(e, 5)
    np.testing.assert_array_equal(chosen.codes, want)
    np.testing.assert_array_equal(chosen.residual, oracle.residual(e, want))
    np.testing.assert_array_equal(chosen.values, e[want >> 1])
    plain = TopK(0).select(tf.constant(e), 5, 0, False)
    assert plain.values is None and plain.residual is None


def test_topk_in_place_clears_the_memory():
    memory = tf.Variable([1.0, -4.0, 0.5, 0.0])
    chosen = TopK(0).select_in_place(memory, tf.constant([0.0, 0, 2, 0]),
                                     2, "v")
    np.testing.assert_array_equal(chosen.codes, [3, 4])  # -4 at 1, 2.5 at 2
    np.testing.assert_array_equal(memory.numpy(), [1.0, 0, 0, 0])
    assert TopK.in_place and chosen.values is None


def test_random_k_draws_k_nonzero_positions_and_clears_them():
    e = tf.constant(np.arange(1, 41, dtype=np.float32) * (-1) ** np.arange(40))
    chosen = RandomK(seed=3, want_values=True).select(e, 6, 2, True)
    codes = chosen.codes.numpy()
    assert len(codes) == 6 and (codes >= 0).all()
    idx = codes >> 1
    assert (np.diff(idx) > 0).all()
    np.testing.assert_array_equal(codes & 1, (e.numpy()[idx] < 0))
    np.testing.assert_array_equal(chosen.values, e.numpy()[idx])
    assert (chosen.residual.numpy()[idx] == 0).all()
    assert not RandomK.in_place
    with pytest.raises(TypeError, match="does not select in place"):
        RandomK().select_in_place(tf.Variable([1.0]), tf.ones([1]), 1, "v")


def test_every_sign_sends_every_nonzero_sign_in_place_of_its_index():
    e = tf.constant([0.5, 0.0, -2.0, -0.0])
    chosen = EverySign().select(e, 4, 0, True)
    np.testing.assert_array_equal(chosen.codes, [0, -1, 5, -1])
    np.testing.assert_array_equal(chosen.residual, [0, 0, 0, 0])
    with pytest.raises(ValueError, match="k must be the tensor's size 4"):
        EverySign().select(e, 3, 0, False)
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN"):
        EverySign().select(tf.constant([np.nan]), 1, 0, False)
