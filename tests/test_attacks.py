"""The experiment adversary (``tf_sparsesign.experiments.Adversary``): what
each hostile mode sends, exactly, against NumPy, on 4 logical CPUs."""

import math

import numpy as np
import pytest
import tensorflow as tf

import tf_sparsesign
from tf_sparsesign.aggregation.adversary_hook import Honest
from tf_sparsesign.aggregation import adversary_hook
from tf_sparsesign.experiments import Adversary
from tf_sparsesign.experiments.hostile import HostileReplicas

DEVICES = [f"/cpu:{i}" for i in range(4)]
N, K = 12, 4


def dense_inputs(rng):
    """Every replica's error-accumulated gradient [4, N] (distinct
    magnitudes) and its honest top-K codes [4, K]."""
    e = rng.permutation(np.arange(1, 4 * N + 1)).reshape(4, N) * \
        rng.choice([-1.0, 1.0], (4, N))
    e = e.astype(np.float32)
    codes = np.stack([tf_sparsesign.sparse_sign_encode(row, K).numpy()
                      for row in e])
    return e, codes


def run_hook(adversary, steps, e, codes, words=K, moving=False):
    """What every replica sends after the hook, for each step:
    ``[steps, 4, K]`` codes and ``[steps, 4, words]`` message words. With
    ``moving``, replica r selects codes and values ``100 * step + r`` (a
    selection that differs every step, to see staleness), and the second
    result is the values sent instead of the words."""
    # A MirroredStrategy with its own collective keys (a plain one reuses
    # the keys of every other plain one in the process, and the gathers of
    # "collude" and "lie" would then clash with later tests' all-reduces).
    strategy = tf_sparsesign.SparseSignStrategy(devices=DEVICES)
    with strategy.scope():
        hook = adversary_hook.bind(adversary, words)
    e_t, codes_t = tf.constant(e), tf.constant(codes)

    def replica(step):
        r = tf.distribute.get_replica_context().replica_id_in_sync_group
        mine, values = tf.gather(codes_t, r), None
        if moving:
            mine = tf.fill([K], tf.cast(step, tf.int32) * 100 + r)
            values = tf.cast(mine, tf.float32)
        sel, values = hook.corrupt_selection(mine, values, N,
                                             lambda: tf.gather(e_t, r))
        # A message that differs every step, to see staleness.
        words_in = tf.fill([words], tf.cast(step, tf.int32) * 100 + r)
        msg = hook.corrupt_message(words_in, "int32", N)
        return sel, tf.cast(values, tf.int32) if moving else msg

    @tf.function
    def step(t):
        return strategy.run(replica, args=(t,))

    out_sel, out_msg = [], []
    for t in range(steps):
        sel, msg = step(tf.constant(t))
        out_sel.append([strategy.experimental_local_results(sel)[r].numpy()
                        for r in range(4)])
        out_msg.append([strategy.experimental_local_results(msg)[r].numpy()
                        for r in range(4)])
    return np.array(out_sel), np.array(out_msg)


def flip(codes):
    return np.where(codes >= 0, codes ^ 1, codes)


@pytest.fixture
def inputs():
    return dense_inputs(np.random.default_rng(0))


def test_bad_adversaries_say_what_is_wrong():
    with pytest.raises(ValueError, match="mode must be one of"):
        Adversary("loud")
    with pytest.raises(ValueError, match="fraction must be in"):
        Adversary("topflip", (0,), fraction=0.0)
    with pytest.raises(ValueError, match="period must be a positive int"):
        Adversary("alternate", (0,), period=0)
    with pytest.raises(ValueError, match="distinct"):
        Adversary("signflip", (1, 1))


def test_honest_replicas_are_untouched_and_flippers_flip(inputs):
    e, codes = inputs
    sel, msg = run_hook(Adversary("signflip", (1, 3)), 2, e, codes)
    for t in range(2):
        np.testing.assert_array_equal(sel[t, [0, 2]], codes[[0, 2]])
        np.testing.assert_array_equal(sel[t, [1, 3]], flip(codes[[1, 3]]))
    np.testing.assert_array_equal(msg[1, :, 0], [100, 101, 102, 103])


def test_random_signs_change_every_step_and_keep_positions(inputs):
    e, codes = inputs
    sel, _ = run_hook(Adversary("random", (0,), seed=3), 6, e, codes)
    np.testing.assert_array_equal(sel[:, 0] >> 1,
                                  np.broadcast_to(codes[0] >> 1, (6, K)))
    assert len({tuple(s) for s in sel[:, 0]}) > 1      # new signs per step
    np.testing.assert_array_equal(sel[:, 1:],
                                  np.broadcast_to(codes[1:], (6, 3, K)))


def test_topflip_inverts_the_largest_magnitudes_it_sends(inputs):
    e, codes = inputs
    sel, _ = run_hook(Adversary("topflip", (2,), fraction=0.5), 1, e, codes)
    mags = np.abs(e[2][codes[2] >> 1])
    biggest = np.argsort(-mags)[:math.ceil(0.5 * K)]
    want = codes[2].copy()
    want[biggest] ^= 1
    np.testing.assert_array_equal(sel[0, 2], want)


def test_colluders_send_one_flipped_message_from_their_mean(inputs):
    e, codes = inputs
    sel, _ = run_hook(Adversary("collude", (0, 2)), 1, e, codes)
    mean = e[[0, 2]].mean(0)
    shared = tf_sparsesign.sparse_sign_encode(mean, K).numpy()
    np.testing.assert_array_equal(sel[0, 0], flip(shared))
    np.testing.assert_array_equal(sel[0, 2], flip(shared))
    np.testing.assert_array_equal(sel[0, 1], codes[1])


def test_lie_inverts_only_where_the_spread_straddles_zero(inputs):
    e, codes = inputs
    adversary = Adversary("lie", (1, 2), z=0.5)
    sel, _ = run_hook(adversary, 1, e, codes)
    mu, sigma = e.mean(0), e.std(0)
    top = tf_sparsesign.sparse_sign_encode(mu, K).numpy() >> 1
    target = mu - 0.5 * sigma * np.sign(mu)
    want = (top << 1) | (target[top] < 0)
    np.testing.assert_array_equal(sel[0, 1], want)
    np.testing.assert_array_equal(sel[0, 2], want)
    # Baruch et al.'s z_max: s = floor(n/2 + 1) - f, z = Phi^-1((n - s)/n).
    assert Adversary("lie", (0, 1)).z_for(8) == pytest.approx(0.3186, 1e-3)
    assert Adversary("lie", (0, 1, 2)).z_for(8) == pytest.approx(0.6745,
                                                                 1e-3)
    assert Adversary("lie", (0,)).z_for(8) == 0.0


def test_stale_messages_are_exactly_delay_steps_late(inputs):
    e, codes = inputs
    sel, values = run_hook(Adversary("stale", (3,), delay=3), 8, e, codes,
                           moving=True)
    for sent in (sel[:, 3], values[:, 3]):  # codes and values alike
        np.testing.assert_array_equal(sent[:3, 0], [3, 103, 203])  # own
        np.testing.assert_array_equal(sent[3:, 0], [3, 103, 203, 303, 403])
        assert np.all(sent == sent[:, :1])
    np.testing.assert_array_equal(sel[:, 0, 0], np.arange(8) * 100)
    np.testing.assert_array_equal(values[:, 1, 0], np.arange(8) * 100 + 1)


def test_alternate_is_honest_then_flips_by_period(inputs):
    e, codes = inputs
    sel, _ = run_hook(Adversary("alternate", (0,), period=2), 6, e, codes)
    for t, flipping in enumerate([0, 0, 1, 1, 0, 0]):
        want = flip(codes[0]) if flipping else codes[0]
        np.testing.assert_array_equal(sel[t, 0], want)


def test_dense_baseline_rejects_modes_without_a_dense_form():
    hook = HostileReplicas(Adversary("lie", (0,)), 0)
    with pytest.raises(ValueError, match="no dense form"):
        hook.corrupt_gradients([tf.zeros([2])])


class _Reencode(Honest):
    """A test hook that replaces every replica's codes by the top-K of the
    error-accumulated gradient it is shown: the honest codes exactly when
    ``dense`` is what the step selects from (memory + gradient, read before
    the fused encode clears the sent entries)."""

    needs_dense = True

    def corrupt_selection(self, codes, values, num_elements, dense):
        return tf_sparsesign.sparse_sign_encode(
            dense(), int(codes.shape[0])), values


def test_dense_view_and_stale_selection_through_the_step():
    """Through SparseSignStrategy.fit (fused error feedback): the dense view
    is memory + gradient (re-encoding it changes nothing), and a stale
    replica changes the result."""
    import keras

    def train(adversary):
        strategy = tf_sparsesign.SparseSignStrategy(
            density=0.25, adversary=adversary, devices=DEVICES)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((64 * 6, 8)).astype("float32")
        y = x @ rng.standard_normal((8, 2)).astype("float32")
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(
                2, use_bias=False)])
            model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
        model.fit(x, y, batch_size=64, verbose=0, shuffle=False)
        return model.get_weights()[0]

    honest = train(None)
    np.testing.assert_array_equal(train(_Reencode()), honest)
    stale = train(Adversary("stale", (0,), delay=1))
    assert np.abs(stale - honest).max() > 1e-4
