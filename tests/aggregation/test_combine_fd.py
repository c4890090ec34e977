"""combine/fd.py: the FD-style defense against NumPy step by step, what it
does with flippers and random senders, its sampling of large models, and
rows the vote rejects."""

import numpy as np
import tensorflow as tf

from fakes import codes_from_signs as encode
from fakes import dense, rule
from tf_sparsesign.aggregation.combine import fd as fd_lib


def synthetic_rows(rng, truth, m, flippers=(), randoms=(), keep=0.3,
                   noise=0.25):
    """Each row sends a random ``keep`` share of the coordinates, each sign
    right with probability 1 - noise; flippers invert theirs, randoms send
    coin flips."""
    n = len(truth)
    out = np.zeros((m, n), np.int64)
    for r in range(m):
        sent = rng.random(n) < keep
        s = np.where(rng.random(n) < noise, -truth, truth)
        if r in flippers:
            s = -s
        if r in randoms:
            s = rng.choice([-1, 1], n)
        out[r] = np.where(sent, s, 0)
    return out


def fd_weights_numpy(products, shared, steps):
    m = len(products)
    rho = products / np.maximum(shared, 1.0)
    np.fill_diagonal(rho, 0.0)
    w = np.ones(m)
    for _ in range(fd_lib.ROUNDS):
        score = (rho * w[None, :]).sum(1)
        typical = np.median(score)
        w = np.clip(score / (typical if typical > 0 else 1.0), -1, 1)
    w = np.round(w / fd_lib.QUANTUM) * fd_lib.QUANTUM
    if not (typical > 0 and steps >= fd_lib.WARMUP_STEPS):
        w = np.ones(m)
    return w.astype(np.float32)


def weighted_vote_numpy(signs, w):
    tally = np.zeros(signs.shape[1], np.float32)
    for r in range(len(signs)):          # float32, in row order
        tally = tally + np.float32(w[r]) * signs[r].astype(np.float32)
    return np.sign(tally)


def test_fd_matches_numpy_step_by_step():
    rng = np.random.default_rng(0)
    m, n = 5, 40
    fd = rule("fd", m)
    assert fd_lib.stride(n, m) == 1
    products, shared = np.zeros((m, m)), np.zeros((m, m))
    for step in range(fd_lib.WARMUP_STEPS + 6):
        truth = rng.choice([-1, 1], n)
        signs = synthetic_rows(rng, truth, m, flippers=(1,), keep=0.5)
        want_w = fd_weights_numpy(products, shared, step)
        got_w = fd.weights().numpy()
        # float32 against float64 before rounding to QUANTUM: a value
        # within rounding of a half-quantum may round either way.
        np.testing.assert_allclose(got_w, want_w, rtol=0,
                                   atol=fd_lib.QUANTUM)
        update, dropped = fd.combine(tf.constant(encode(signs)), None, n)
        # Exact: the weights are multiples of QUANTUM in [-1, 1], so every
        # partial tally is a float32 and the order of the sum is free.
        np.testing.assert_array_equal(dense(update, n),
                                      weighted_vote_numpy(signs, got_w))
        assert int(dropped) == 0
        products += signs @ signs.T
        shared += np.abs(signs) @ np.abs(signs).T
        np.testing.assert_array_equal(fd.products.numpy(), products)
        np.testing.assert_array_equal(fd.shared.numpy(), shared)


def test_fd_turns_a_flipper_around_and_mutes_random_signs():
    rng = np.random.default_rng(1)
    m, n = 8, 400
    fd = rule("fd", m)
    for _ in range(fd_lib.WARMUP_STEPS + 10):
        truth = rng.choice([-1, 1], n)
        signs = synthetic_rows(rng, truth, m, flippers=(0, 1, 2),
                               randoms=(3,))
        used = fd.weights().numpy()
        update, _ = fd.combine(tf.constant(encode(signs)), None, n)
        votes = dense(update, n)
    w = fd.weights().numpy()
    np.testing.assert_array_equal(w[:3], [-1, -1, -1])  # turned around
    assert abs(w[3]) < 0.25                             # nearly muted
    assert np.all(w[4:] > 0.75)                         # honest
    # The last vote, with 3 of 8 flipping, is right about as often as a
    # vote that knew who flips and who guesses; the plain vote is not.
    def right(v):
        return (v == truth).mean()
    oracle = weighted_vote_numpy(signs, [-1, -1, -1, 0, 1, 1, 1, 1])
    assert right(votes) > right(oracle) - 0.02
    assert right(np.sign(signs.sum(0))) < right(oracle) - 0.15
    np.testing.assert_array_equal(votes, weighted_vote_numpy(signs, used))


def test_fd_samples_every_stride_th_coordinate_of_large_models():
    fd = rule("fd", 8)
    assert fd_lib.stride(3_000_000, 8) == 46
    codes = tf.constant([[(0 << 1), (46 << 1) | 1, (47 << 1)]] * 2 +
                        [[-1, -1, -1]] * 6, tf.int32)
    products, shared = fd.correlate(codes, 3_000_000)
    # Rows 0 and 1 share indices 0 and 46 (index 47 is not sampled).
    assert products.numpy()[0, 1] == 2 and shared.numpy()[0, 1] == 2
    assert shared.numpy()[0, 0] == 2 and shared.numpy()[2, 2] == 0


def test_fd_ignores_rows_the_vote_rejects():
    fd = rule("fd", 3, on_invalid="drop")
    codes = tf.constant([[2, 4], [2, 4], [4, 2]], tf.int32)  # row 2: unsorted
    _, dropped = fd.combine(codes, None, 10)
    assert int(dropped) == 1
    assert fd.shared.numpy()[2].sum() == 0 and fd.shared.numpy()[0, 1] == 2
