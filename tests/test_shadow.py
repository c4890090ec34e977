"""Shadow mode (shadow=True): training is exactly the dense baseline, bit
for bit, while the sparse step runs beside it and is compared; its state
is never saved, so checkpoints are the dense run's."""

import numpy as np
import pytest
import keras
from sklearn.datasets import load_digits

import tf_sparsesign
from tf_sparsesign.integration.routing import aggregator_of

DEVICES = [f"/cpu:{i}" for i in range(4)]


def digits():
    """A real data set that ships with scikit-learn (no download)."""
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype("float32")[:512], y.astype("int32")[:512]


def train(steps=8, **settings):
    x, y = digits()
    strategy = tf_sparsesign.SparseSignStrategy(devices=DEVICES, **settings)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((64,)),
                                  keras.layers.Dense(32, activation="relu"),
                                  keras.layers.Dense(10)])
        model.compile(optimizer=keras.optimizers.Adam(1e-2),
                      loss=keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True))
    logger = tf_sparsesign.CommunicationLogger(update_freq="batch")
    history = model.fit(x[:64 * steps], y[:64 * steps], batch_size=64,
                        shuffle=False, verbose=0, callbacks=[logger])
    return model, history


def test_shadow_trains_exactly_the_dense_baseline():
    shadow, history = train(density=0.05, shadow=True)
    dense, _ = train(density=0.05, dense=True)
    for a, b in zip(shadow.get_weights(), dense.get_weights()):
        np.testing.assert_array_equal(a, b)
    # the optimizer holds the dense run's variables, nothing more
    assert [tuple(v.shape) for v in shadow.optimizer.variables] == \
        [tuple(v.shape) for v in dense.optimizer.variables]
    stats = tf_sparsesign.communication_stats(shadow.optimizer)
    assert stats["shadow_steps"] == 8
    assert 0.0 < stats["shadow_agreement"] < 1.0
    assert 0.0 < stats["shadow_cosine"] < 1.0
    assert 0 < stats["shadow_bytes_sent"] < stats["dense_bytes"]
    assert stats["bytes_sent"] == stats["dense_bytes"]  # dense traffic
    for key in ("shadow_agreement", "shadow_cosine", "shadow_bytes_sent"):
        assert len(history.history[key]) == 1


def test_the_shadow_runs_the_configured_sparse_step():
    shadow, _ = train(steps=2, density=0.05, shadow=True, wire="rice",
                      worker_momentum="lion")
    sparse = aggregator_of(shadow.optimizer).sparse
    assert sparse.exchange.codec.name == "rice"
    assert type(sparse.memory).__name__ == "LionMomentum"


def test_shadow_and_dense_together_is_an_error():
    with pytest.raises(ValueError, match="dense=True has no sparse step to "
                                         "watch"):
        tf_sparsesign.SparseSignConfig(dense=True, shadow=True)


def test_the_statistics_are_their_definitions():
    """agreement, cosine from the sparse vote and the dense step, against
    NumPy on the whole model's flattened vectors."""
    from types import SimpleNamespace

    import tensorflow as tf

    from tf_sparsesign.aggregation.interfaces import SparseUpdate
    from tf_sparsesign.aggregation.shadow import STATS, ShadowAggregator

    rng = np.random.default_rng(0)
    sizes, shapes = [6, 4, 5], [(2, 3), (4,), (5,)]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads[1] = None  # a variable without a gradient counts as zeros
    indices = np.array([0, 3, 5, 7, 10, 14], np.int32)
    values = np.array([1, -1, 1, 2, -3, 1], np.float32)
    layout = SimpleNamespace(sizes=sizes)
    stats = {n: tf.Variable(0.0) for n in STATS}
    shadow = ShadowAggregator(
        SimpleNamespace(layout=layout, state=None, adversary=None),
        SimpleNamespace(ks=[1, 1, 1]), stats)
    shadow._compare(SparseUpdate(tf.constant(indices), tf.constant(values)),
                    [None if g is None else tf.constant(g) for g in grads])
    flat = np.concatenate([np.zeros(n, np.float32) if g is None
                           else g.ravel() for g, n in zip(grads, sizes)])
    vote = np.zeros(sum(sizes), np.float32)
    vote[indices] = values
    moved = vote != 0
    agreement = np.mean(np.sign(vote[moved]) == np.sign(flat[moved]))
    cosine = vote @ flat / (np.linalg.norm(vote) * np.linalg.norm(flat))
    assert float(stats["agreement"].numpy()) == pytest.approx(agreement)
    assert float(stats["cosine"].numpy()) == pytest.approx(cosine,
                                                            rel=1e-5)
    assert float(stats["steps"].numpy()) == 1.0
