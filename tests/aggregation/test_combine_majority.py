"""combine/majority.py (and the shared VOTE): sign of the sum, sparse,
against the NumPy oracle; malformed rows raise or abstain as built."""

import numpy as np
import pytest
import tensorflow as tf

import oracle
from fakes import codes_from_signs, dense, random_codes, rule


def test_majority_is_the_oracle_in_sparse_form():
    rng = np.random.default_rng(0)
    n, m = 60, 5
    codes = np.stack([random_codes(rng, n, 12) for _ in range(m)])
    update, dropped = rule("plain", m).combine(tf.constant(codes), None, n)
    want, _ = oracle.vote(codes, n)
    np.testing.assert_array_equal(dense(update, n), want)
    assert int(dropped) == 0
    # only touched coordinates appear, ascending, with |tally| as score
    idx = update.indices.numpy()
    assert (np.diff(idx) > 0).all() and set(idx) <= set((codes >> 1).ravel())
    tally = np.zeros(n)
    for r in codes:
        tally[r >> 1] += 1 - 2 * (r & 1)
    np.testing.assert_array_equal(update.scores, np.abs(tally[idx]))


def test_ties_and_unsent_coordinates_give_zero():
    codes = codes_from_signs([[1, -1, 0], [-1, -1, 0]])
    update, _ = rule("plain", 2).combine(tf.constant(codes), None, 3)
    np.testing.assert_array_equal(dense(update, 3), [0, -1, 0])


def test_a_malformed_row_raises_or_abstains():
    codes = tf.constant([[2, 4], [4, 2], [2, 40]], tf.int32)
    with pytest.raises(tf.errors.InvalidArgumentError):
        rule("plain", 3, "raise").combine(codes, None, 10)
    update, dropped = rule("plain", 3, "drop").combine(codes, None, 10)
    assert int(dropped) == 2
    np.testing.assert_array_equal(dense(update, 10)[[1, 2]], [1, 1])
