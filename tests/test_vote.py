"""majority_vote: hand-worked cases, every invalid input, fuzzing."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from tf_sparsesign import ops, reference

import oracle


def vote_compiled(codes, n, weights=None, on_invalid="raise"):
    out = ops.majority_vote(tf.constant(codes, tf.int32), n, weights,
                            on_invalid)
    return out if on_invalid == "drop" else (out, None)


def vote_reference(codes, n, weights=None, on_invalid="raise"):
    w = None if weights is None else tf.constant(weights, tf.float32)
    return reference.majority_vote(tf.constant(codes, tf.int32), n, w,
                                   on_invalid)


IMPLS = [pytest.param(vote_compiled, id="compiled"),
         pytest.param(vote_reference, id="reference")]


def code(index, negative=False):
    return (index << 1) | int(negative)


@pytest.mark.parametrize("impl", IMPLS)
def test_hand_worked(compiled, impl):
    codes = [[code(0), code(2, True)],
             [code(0, True), code(2, True)],
             [code(0), code(3)]]
    votes, _ = impl(codes, 5)
    # index 0: + - + -> +; 1: nobody -> 0; 2: - - -> -; 3: + -> +; 4: 0
    np.testing.assert_array_equal(votes.numpy(), [1, 0, -1, 1, 0])
    # a tie gives 0
    votes, _ = impl([[code(1)], [code(1, True)]], 3)
    np.testing.assert_array_equal(votes.numpy(), [0, 0, 0])
    # padding abstains, anywhere in the row
    votes, _ = impl([[code(1), -1, -1], [-1, code(0, True), code(2)]], 3)
    np.testing.assert_array_equal(votes.numpy(), [-1, 1, 1])
    # empty inputs
    votes, _ = impl(np.zeros([0, 4], np.int32), 3)
    np.testing.assert_array_equal(votes.numpy(), [0, 0, 0])
    votes, _ = impl(np.zeros([2, 0], np.int32), 0)
    assert votes.shape == (0,)


@pytest.mark.parametrize("impl", IMPLS)
def test_weights(compiled, impl):
    codes = [[code(0), code(1)], [code(0, True), code(1, True)],
             [code(0, True), -1]]
    # unweighted: index 0 -> -, index 1 -> tie
    votes, _ = impl(codes, 2)
    np.testing.assert_array_equal(votes.numpy(), [-1, 0])
    # a heavy first worker wins both
    votes, _ = impl(codes, 2, weights=[3.0, 1.0, 1.0])
    np.testing.assert_array_equal(votes.numpy(), [1, 1])
    # zero weight: abstains; negative weight: flips
    votes, _ = impl(codes, 2, weights=[0.0, 1.0, -1.0])
    np.testing.assert_array_equal(votes.numpy(), [0, -1])


INVALID_ROWS = [
    ([code(5)], "index 5, outside"),                 # index == N
    ([code(1 << 20)], "outside"),                    # far out of range
    ([-2], "not the padding code"),                  # negative, not -1
    ([-(1 << 31)], "not the padding code"),          # int32 min
    ([code(2), code(2)], "strictly increase"),       # duplicate index
    ([code(2), code(2, True)], "strictly increase"),  # same index, both signs
    ([code(3), code(1)], "strictly increase"),       # decreasing
    ([code(3), -1, code(1)], "strictly increase"),   # decreasing across pad
]


@pytest.mark.parametrize("bad,why", INVALID_ROWS)
def test_invalid_rows_raise_or_drop(compiled, bad, why):
    good = [code(0)] + [-1] * (len(bad) - 1)
    codes = [good, bad, good]
    for impl in (vote_compiled, vote_reference):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"row 1 \(of 3\) is invalid"):
            impl(codes, 5)
        votes, dropped = impl(codes, 5, on_invalid="drop")
        assert int(dropped) == 1
        np.testing.assert_array_equal(votes.numpy(), [1, 0, 0, 0, 0])
    with pytest.raises(tf.errors.InvalidArgumentError, match=why):
        vote_compiled(codes, 5)


def test_error_names_row_and_code(compiled):
    codes = [[code(0), code(1)], [code(4), code(9)]]
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"row 1 \(of 2\) is invalid: code 18 at "
                             r"position 1 decodes to index 9"):
        ops.majority_vote(codes, 5)


def test_bad_arguments_are_clear(compiled):
    with pytest.raises(TypeError, match="int32, got int64"):
        ops.majority_vote(tf.constant([[0]], tf.int64), 2)
    with pytest.raises(ValueError, match=r"shape \[M, k\]"):
        ops.majority_vote(tf.constant([0, 2]), 2)
    with pytest.raises(ValueError, match="on_invalid"):
        ops.majority_vote(tf.constant([[0]]), 2, on_invalid="ignore")
    with pytest.raises(ValueError, match=r"shape \[2\]"):
        ops.majority_vote(tf.constant([[0], [2]]), 2, weights=[1.0])
    with pytest.raises(TypeError, match="weights must be float32"):
        ops.majority_vote(tf.constant([[0]]), 2, weights=tf.constant([1]))
    with pytest.raises(ValueError, match=r"\[0, 2\*\*30\]"):
        ops.majority_vote(tf.constant([[0]]), -1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="finite"):
        ops.majority_vote(tf.constant([[0]]), 2, weights=[np.nan])


def test_dynamic_rank_checked_in_kernel(compiled):
    @tf.function(input_signature=[tf.TensorSpec(None, tf.int32)])
    def f(c):
        return ops.majority_vote(c, 4)

    np.testing.assert_array_equal(f(tf.constant([[0, 3]])), [1, -1, 0, 0])
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError),
                       match="rank|shape"):
        f(tf.constant([0, 3]))


@st.composite
def messages(draw):
    n = draw(st.integers(1, 40))
    m = draw(st.integers(1, 6))
    k = draw(st.integers(0, 8))
    rows = []
    for _ in range(m):
        if draw(st.booleans()):  # a well-formed row
            idx = sorted(draw(st.sets(st.integers(0, n - 1), max_size=k)))
            row = [code(i, draw(st.booleans())) for i in idx]
            row += [-1] * (k - len(row))
        else:  # anything at all
            row = draw(st.lists(st.integers(-3, 2 * n + 3), min_size=k,
                                max_size=k))
        rows.append(row)
    weights = draw(st.one_of(st.none(), st.lists(
        st.floats(-4, 4, width=32), min_size=m, max_size=m)))
    return np.array(rows, np.int32).reshape(m, k), n, weights


@settings(max_examples=300, deadline=None)
@given(messages())
def test_fuzz_against_oracle(compiled, case):
    codes, n, weights = case
    expect, dropped = oracle.vote(codes, n, weights, drop=True)
    for impl in (vote_compiled, vote_reference):
        votes, got = impl(codes, n, weights, on_invalid="drop")
        np.testing.assert_array_equal(votes.numpy(), expect)
        assert int(got) == dropped
        if dropped:
            with pytest.raises(tf.errors.InvalidArgumentError,
                               match="is invalid"):
                impl(codes, n, weights)
        else:
            np.testing.assert_array_equal(impl(codes, n, weights)[0].numpy(),
                                          expect)


def test_random_garbage_never_crashes(compiled):
    rng = np.random.default_rng(0)
    for trial in range(300):
        m, k = rng.integers(0, 6), rng.integers(0, 50)
        n = int(rng.integers(0, 100))
        codes = rng.integers(-(1 << 31), (1 << 31) - 1, (m, k),
                             dtype=np.int64).astype(np.int32)
        votes, dropped = ops.majority_vote(codes, n, on_invalid="drop")
        assert votes.shape == (n,) and 0 <= int(dropped) <= m


def test_large_vote_matches_oracle(compiled):
    rng = np.random.default_rng(1)
    n, m, k = 2_000_000, 8, 20_000
    rows = []
    for _ in range(m):
        idx = np.sort(rng.choice(n, k, replace=False))
        rows.append((idx << 1) | rng.integers(0, 2, k))
    codes = np.array(rows, np.int32)
    w = rng.uniform(0.1, 2.0, m).astype(np.float32)
    for weights in (None, w):
        expect, _ = oracle.vote(codes, n, weights)
        np.testing.assert_array_equal(
            ops.majority_vote(codes, n, weights).numpy(), expect)
        np.testing.assert_array_equal(
            vote_reference(codes, n, weights)[0].numpy(), expect)


def test_encode_then_vote_round_trip(compiled):
    """Three workers encode; the vote agrees with a dense sign-sum."""
    rng = np.random.default_rng(2)
    grads = rng.standard_normal((3, 1000)).astype(np.float32)
    codes = tf.stack([ops.sparse_sign_encode(g, 1000) for g in grads])
    votes = ops.majority_vote(codes, 1000).numpy()
    np.testing.assert_array_equal(votes, np.sign(np.sign(grads).sum(0)))


@pytest.mark.parametrize("impl", IMPLS)
def test_denormal_weights_and_partial_sums_count_as_zero(compiled, impl):
    """Independent of the FPU's flush-to-zero mode (TF's threads flush,
    NumPy does not): float32 denormals are zero, in weights and in sums."""
    tiny = 1.401298464324817e-45  # the smallest float32 denormal
    votes, _ = impl([[code(0)]], 1, weights=[tiny])
    np.testing.assert_array_equal(votes.numpy(), [0])
    # two normal weights whose difference is a denormal
    votes, _ = impl([[code(0)], [code(0, True)]], 1,
                    weights=[1.5e-38, 1.4e-38])
    np.testing.assert_array_equal(votes.numpy(), [0])
    expect, _ = oracle.vote([[code(0)], [code(0, True)]], 1,
                            [1.5e-38, 1.4e-38])
    np.testing.assert_array_equal(expect, [0])
