"""signSGD-MV as packed signs in training: the automatic choice of parts,
the accounting, and the same weights as the int32 path, bit for bit.

Four logical CPU devices (conftest).
"""

import numpy as np
import pytest
import keras

import tf_sparsesign
from tf_sparsesign import policy
from tf_sparsesign.aggregation import registry
from tf_sparsesign.experiments import Adversary
from tf_sparsesign.integration.routing import aggregator_of

DEVICES = [f"/cpu:{i}" for i in range(4)]
# The int32 comparison path warns that it sends more than signSGD-MV (it is
# signSGD-MV); Keras warns about the variable that gets no gradient.
pytestmark = [pytest.mark.filterwarnings("ignore:.*more than signSGD-MV"),
              pytest.mark.filterwarnings("ignore:Gradients do not exist")]


# -- the automatic choice -------------------------------------------------

@pytest.mark.parametrize("settings,parts", [
    (dict(density=1.0, error_feedback=False),
     ("EverySign", "packed", "PackedMajorityVote")),
    (dict(density=1.0, error_feedback=False, vote="weighted", wire="rice"),
     ("EverySign", "packed", "PackedWeightedVote")),
    (dict(density=1.0, k=None), ("EverySign", "packed",
                                 "PackedMajorityVote")),
    (dict(density=0.5, wire="packed"), ("TopK", "packed",
                                        "PackedMajorityVote")),
    (dict(density=0.01), ("TopK", "int32", "MajorityVote")),
    (dict(density=1.0, method="random_k"), ("RandomK", "int32",
                                            "MajorityVote")),
])
def test_parts_are_chosen_once_at_build(settings, parts):
    strategy = tf_sparsesign.SparseSignStrategy(devices=DEVICES, **settings)
    with strategy.scope():
        model = keras.Sequential([keras.Input((30,)), keras.layers.Dense(4)])
        opt = keras.optimizers.SGD(0.1)
        opt.build(model.trainable_variables)
    agg = aggregator_of(opt)
    assert (type(agg.memory.selector).__name__, agg.exchange.codec.name,
            type(agg.exchange.rule).__name__) == parts


def test_signsgd_message_is_what_policy_and_plan_say():
    strategy = tf_sparsesign.SparseSignStrategy(
        1.0, error_feedback=False, devices=DEVICES)
    with strategy.scope():
        model = keras.Sequential([keras.Input((50,)), keras.layers.Dense(7)])
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    x = np.ones((32, 50), np.float32)
    model.fit(x, np.zeros((32, 7), np.float32), batch_size=16, verbose=0)
    stats = tf_sparsesign.communication_stats(model.optimizer)
    n = 50 * 7 + 7                                       # 357 coordinates
    assert stats["message_bytes"] * 8 == policy.message_bits(
        "packed", n, n) == 32 * (1 + 18)                 # ceil(357/20) = 18
    assert stats["bytes_sent"] == 2 * 3 * stats["message_bytes"]  # 2 steps


# -- the same training as the int32 path, bit for bit -------------------------

class NoGradient(keras.layers.Layer):
    """A layer whose weight gets no gradient (its coordinates abstain)."""

    def build(self, shape):
        self.unused = self.add_weight(shape=(3,), initializer="ones")

    def call(self, x):
        return x


def _train(settings, int32_path, monkeypatch, steps=4):
    """Embedding (sparse gradients: many exact zeros) + ReLU + a weight
    that gets no gradient; 4 replicas."""
    with monkeypatch.context() as patch:
        if int32_path:  # what signSGD-MV was before: top-K over all, int32
            patch.setattr(registry, "EVERY_SIGN",
                          registry.METHODS["sign_vote"])
            patch.setattr(registry, "EVERY_SIGN_WIRE", "int32")
        strategy = tf_sparsesign.SparseSignStrategy(devices=DEVICES,
                                                    **settings)
        rng = np.random.default_rng(5)
        x = rng.integers(0, 40, (16 * steps, 3))
        y = rng.standard_normal((16 * steps, 2)).astype(np.float32)
        with strategy.scope():
            keras.utils.set_random_seed(0)
            tokens = keras.Input((3,), dtype="int32")
            h = keras.layers.Flatten()(keras.layers.Embedding(40, 4)(tokens))
            h = NoGradient()(keras.layers.Dense(16, activation="relu")(h))
            model = keras.Model(tokens, keras.layers.Dense(2)(h))
            model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
        model.fit(x, y, batch_size=16, shuffle=False, verbose=0)
        agg = aggregator_of(model.optimizer)
        memories = [m.numpy() for s in range(len(agg.layout.sizes))
                    for m in agg.state.memory_values(s)] if \
            agg.state.memories else []
        return model.get_weights(), memories, agg


@pytest.mark.parametrize("settings", [
    dict(density=1.0, error_feedback=False),
    dict(density=1.0, error_feedback=False, vote="weighted",
         adversary=Adversary("signflip", replicas=(1,))),
    dict(density=1.0, error_feedback=True, on_invalid="drop"),
])
def test_same_weights_as_the_int32_path_bit_for_bit(settings, monkeypatch):
    packed, packed_mem, agg = _train(settings, False, monkeypatch)
    int32, int32_mem, old = _train(settings, True, monkeypatch)
    assert agg.exchange.codec.name == "packed" and old.exchange.codec.name == "int32"
    for a, b in zip(packed, int32):
        assert a.view(np.uint32).tolist() == b.view(np.uint32).tolist()
    for a, b in zip(packed_mem, int32_mem):
        assert a.view(np.uint32).tolist() == b.view(np.uint32).tolist()
    if settings.get("vote") == "weighted":
        np.testing.assert_array_equal(agg.exchange.rule.agree.numpy(),
                                      old.exchange.rule.agree.numpy())
        np.testing.assert_array_equal(agg.exchange.rule.disagree.numpy(),
                                      old.exchange.rule.disagree.numpy())
    # 32x fewer bits per coordinate than int32 codes, less the framing.
    n = sum(agg.layout.sizes)
    assert agg.exchange.codec.words == -(-n // 20) and old.exchange.codec.words == n


def test_garbage_packed_message_is_dropped_and_counted():
    strategy = tf_sparsesign.SparseSignStrategy(
        1.0, error_feedback=False, on_invalid="drop", devices=DEVICES,
        adversary=Adversary("garbage", replicas=(3,)))
    with strategy.scope():
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    hist = model.fit(np.ones((48, 6), np.float32),
                     np.zeros((48, 3), np.float32), batch_size=16,
                     verbose=0,
                     callbacks=[tf_sparsesign.CommunicationLogger()])
    assert aggregator_of(model.optimizer).exchange.codec.name == "packed"
    assert hist.history["comm_dropped_rows"] == [3]
