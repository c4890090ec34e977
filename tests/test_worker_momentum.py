"""worker_momentum="lion": each replica's Lion momentum under the vote.

At density 1 without error feedback it is exactly Distributed Lion with a
majority vote (Liu et al. 2024), checked against NumPy step by step, bit
for bit, through SparseSignStrategy over 4 replicas with given gradients;
below density 1 the Lion direction goes through error feedback and top-K.
The momentum is per-replica state, saved and restored like the memories.
"""

import numpy as np
import pytest
import tensorflow as tf
import keras

import oracle
import tf_sparsesign
from tf_sparsesign.aggregation.state import components
from tf_sparsesign.integration.routing import aggregator_of

DEVICES = [f"/cpu:{i}" for i in range(4)]
M, SHAPE, LR, WD, B1, B2 = 4, (3, 5), 0.01, 0.1, 0.9, 0.99


def run(density, error_feedback, steps=6, seed=0, **settings):
    """Trains one variable on given per-replica gradients; returns the
    weights, the aggregator and the gradients used."""
    rng = np.random.default_rng(seed)
    grads = rng.standard_normal((steps, M, *SHAPE)).astype(np.float32)
    grads[:, :, 0, 0] = 0.0  # zeros abstain
    w0 = rng.standard_normal(SHAPE).astype(np.float32)
    strategy = tf_sparsesign.SparseSignStrategy(
        density, error_feedback=error_feedback, worker_momentum="lion",
        beta_1=B1, beta_2=B2, devices=DEVICES, **settings)
    with strategy.scope():
        var = keras.Variable(w0)
        opt = keras.optimizers.Lion(LR, weight_decay=WD)
        opt.build([var])

    @tf.function
    def step(t):
        def replica():
            r = tf.distribute.get_replica_context().replica_id_in_sync_group
            opt.apply_gradients([(tf.gather(tf.constant(grads[:, :]), t)[r],
                                  var)])
        strategy.run(replica)

    for t in range(steps):
        step(tf.constant(t))
    return var.numpy(), aggregator_of(opt), grads, w0


def numpy_lion(grads, w0, density, error_feedback):
    """The reference: per replica c = e + g (error feedback on the
    gradient; c = g without), u = b1 m + (1-b1) c, the signs of u's top K,
    e <- c with them cleared, m <- b2 m + (1-b2) c; vote; x -= lr wd x,
    x -= lr vote; float32 throughout, in the same order."""
    f = np.float32
    x = w0.copy()
    n = x.size
    k = int(np.ceil(density * n))
    m = np.zeros((M, n), np.float32)
    e = np.zeros((M, n), np.float32)
    for g in grads.reshape(len(grads), M, n):
        codes = []
        for r in range(M):
            c = e[r] + g[r] if error_feedback else g[r]
            u = f(B1) * m[r] + f(1.0 - B1) * c
            sent = oracle.encode(u, k)
            if error_feedback:
                e[r] = oracle.residual(c, sent)
            m[r] = f(B2) * m[r] + f(1.0 - B2) * c
            codes.append(sent)
        vote, _ = oracle.vote(np.stack(codes), n)
        flat = x.reshape(-1)
        flat = flat - (flat * f(WD)) * f(LR)
        flat = flat - vote * f(LR)
        x = flat.reshape(x.shape)
    return x, m, e


@pytest.mark.parametrize("density,error_feedback", [(1.0, False),
                                                    (0.2, True)])
def test_steps_match_numpy_bit_for_bit(density, error_feedback):
    w, agg, grads, w0 = run(density, error_feedback)
    want, momenta, memories = numpy_lion(grads, w0, density, error_feedback)
    np.testing.assert_array_equal(w, want)
    got = np.stack([c.numpy().reshape(-1) for c in
                    components(agg.state.group("momentum")[0])])
    np.testing.assert_array_equal(got, momenta)
    if error_feedback:
        got = np.stack([c.numpy().reshape(-1)
                        for c in components(agg.state.memories[0])])
        np.testing.assert_array_equal(got, memories)


def test_density_one_is_packed_signsgd_traffic():
    """Distributed Lion sends signSGD-MV's packed signs."""
    _, agg, _, _ = run(1.0, False, steps=1)
    assert agg.exchange.codec.name == "packed"
    assert type(agg.memory).__name__ == "LionMomentum"


def test_every_replicas_momentum_is_saved_and_restored():
    _, agg, _, _ = run(0.2, True, steps=3)
    store = {}
    agg.owner.save_own_variables(store)
    keys = {k for k in store if k.startswith("sparsesign_momentum_0_")}
    assert keys == {f"sparsesign_momentum_0_{r}" for r in range(M)}
    saved = [store[f"sparsesign_momentum_0_{r}"] for r in range(M)]
    assert not np.array_equal(saved[0], saved[1])  # each replica its own
    _, fresh, _, _ = run(0.2, True, steps=1, seed=1)
    fresh.owner.load_own_variables(store)
    for r, c in enumerate(components(fresh.state.group("momentum")[0])):
        np.testing.assert_array_equal(c.numpy(), saved[r])
    for r, c in enumerate(components(fresh.state.memories[0])):
        np.testing.assert_array_equal(c.numpy(),
                                      store[f"sparsesign_memory_0_{r}"])


def test_settings_are_validated():
    with pytest.raises(ValueError, match=r"worker_momentum must be one of "
                                         r"\('none', 'lion'\)"):
        tf_sparsesign.SparseSignConfig(worker_momentum="adam")
    with pytest.raises(ValueError, match=r"beta_1 must be a number in "
                                         r"\[0, 1\), got 1.0"):
        tf_sparsesign.SparseSignConfig(beta_1=1.0)


@pytest.mark.parametrize("make,said", [
    (lambda: keras.optimizers.AdamW(1e-3), True),
    (lambda: keras.optimizers.Adam(1e-3), True),
    (lambda: keras.optimizers.SGD(0.1), False),
])
def test_an_adam_user_is_told_once_what_the_vote_does(caplog, make, said):
    """Wrapping an Adam-family optimizer without worker momentum: one log
    line with the measured alternative (routing._ADAM_NOTE)."""
    from tf_sparsesign.integration import routing

    routing._SAID.clear()
    for _ in range(2):
        strategy = tf_sparsesign.SparseSignStrategy(0.2, devices=DEVICES)
        with strategy.scope():
            model = keras.Sequential([keras.Input((3,)),
                                      keras.layers.Dense(2)])
            model.compile(optimizer=make(), loss="mse")
        with caplog.at_level("WARNING", logger="tensorflow"):
            model.fit(np.ones((8, 3), np.float32),
                      np.zeros((8, 2), np.float32), batch_size=8, verbose=0)
    notes = [r.getMessage() for r in caplog.records
             if "second moment tracks the vote" in r.getMessage()]
    assert len(notes) == (1 if said else 0), notes
    if said:
        assert "we recommend wrapping SGD" in notes[0]
