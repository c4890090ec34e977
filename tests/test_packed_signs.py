"""signSGD-MV as packed signs: the format, the vote straight from packed
rows, the automatic choice, and the same weights as the int32 path.

Four logical CPU devices (conftest).
"""

import numpy as np
import pytest
import tensorflow as tf
import keras

import tf_sparsesign
from tf_sparsesign import ops, policy
from tf_sparsesign.aggregation import registry
from tf_sparsesign.aggregation.codec.packed_signs import PackedSignsCodec
from tf_sparsesign.aggregation.select.every_sign import EverySign
from tf_sparsesign.experiments import Adversary
from tf_sparsesign.integration.routing import aggregator_of
from tf_sparsesign.reference import packed as reference
from tf_sparsesign.reference.packed import row_signs

DEVICES = [f"/cpu:{i}" for i in range(4)]


def signs_with_zeros(rng, rows, n, zeros=0.3):
    g = rng.standard_normal((rows, n)).astype(np.float32)
    g[rng.random((rows, n)) < zeros] = 0.0
    return g


# -- the format -----------------------------------------------------------

def test_message_is_the_documented_layout():
    # signs + - 0 + 0 | - +: digits 1 2 0 1 0 | 2 1 (0 abstains, 1 +, 2 -)
    g = tf.constant([0.5, -2.0, 0.0, 1.0, -0.0, -3.0, 4.0])
    byte0 = 1 + 2 * 3 + 0 * 9 + 1 * 27 + 0 * 81           # 34
    byte1 = 2 + 1 * 3                                      # 5
    codec = PackedSignsCodec(7, 7, False)
    assert codec.words == 1 == policy.packed_sign_words(7)
    from_every = codec.encode(EverySign().select(g, 7, 0, False).codes)
    from_topk = codec.encode(ops.sparse_sign_encode(g, 7))  # -1 at the tail
    assert from_every.numpy().tolist() == [byte0 | byte1 << 8] == \
        from_topk.numpy().tolist()
    # Coordinate 20 starts the second word; the top byte may exceed 127.
    many = PackedSignsCodec(21, 21, False)
    words = many.encode(tf.constant([2 * 19 + 1, 2 * 20], tf.int32))
    assert words.numpy().tolist() == [np.int32(np.uint32(2 * 81 << 24)), 1]


@pytest.mark.parametrize("n", [1, 5, 19, 20, 21, 99, 1000])
def test_codes_in_any_order_round_trip(n):
    rng = np.random.default_rng(n)
    g = signs_with_zeros(rng, 1, n)[0]
    codes = EverySign().select(tf.constant(g), n, 0, False).codes.numpy()
    shuffled = tf.constant(rng.permutation(codes))
    codec = PackedSignsCodec(n, n, False)
    words = codec.encode(shuffled)
    assert words.shape == [codec.words]
    np.testing.assert_array_equal(row_signs(words, n).numpy(), np.sign(g))
    decoded = codec.decode(words[None, :], "raise")
    assert decoded.valid.numpy().tolist() == [True]


def test_every_sign_matches_the_encode_op_and_its_residual():
    rng = np.random.default_rng(0)
    e = tf.constant(signs_with_zeros(rng, 1, 60)[0].reshape(6, 10))
    mine = EverySign().select(e, 60, 0, True)
    codes, residual = ops.sparse_sign_encode(e, 60, return_residual=True)
    live = mine.codes.numpy()
    np.testing.assert_array_equal(live[live >= 0],
                                  codes.numpy()[codes.numpy() >= 0])
    np.testing.assert_array_equal(mine.residual.numpy(), residual.numpy())
    with pytest.raises(ValueError, match="k must be the tensor's size 60"):
        EverySign().select(e, 59, 0, False)
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN"):
        EverySign().select(tf.constant([1.0, np.nan]), 2, 0, False)


def bits(x):
    return np.asarray(x).view(np.uint32).tolist()


@pytest.mark.parametrize("weighted", [False, True])
def test_vote_from_packed_rows_equals_majority_vote_bit_for_bit(
        weighted, compiled):
    rng = np.random.default_rng(7)
    for n, m in [(1, 1), (37, 4), (1000, 8), (4099, 5), (300_001, 3)]:
        g = signs_with_zeros(rng, m, n, zeros=0.4)
        g[:, :3] = np.sign(g[:1, :3])  # some coordinates tie: 0
        codes = tf.stack([ops.sparse_sign_encode(r, n) for r in g])
        rows = tf.stack([ops.packed_signs_encode(c, n) for c in codes])
        weights = None
        if weighted:  # with zero and denormal weights (count as zero)
            weights = (rng.random(m) * 5).astype(np.float32)
            weights[:: 3] = np.float32(1e-40)
            weights = tf.constant(weights)
        expected = bits(ops.majority_vote(codes, n, weights))
        assert bits(ops.packed_signs_vote(rows, n, weights)) == expected
        assert bits(reference.packed_signs_vote(rows, n, weights)) == \
            expected


def test_compiled_encode_equals_the_reference(compiled):
    rng = np.random.default_rng(3)
    for n in (0, 1, 19, 20, 21, 4099, 300_001):
        g = signs_with_zeros(rng, 1, n)[0]
        codes = rng.permutation(
            EverySign().select(tf.constant(g), n, 0, False).codes.numpy())
        codes = tf.constant(codes, tf.int32)
        assert ops.packed_signs_encode(codes, n).numpy().tolist() == \
            reference.packed_signs_encode(codes, n).numpy().tolist()


@pytest.mark.parametrize("impl", ["compiled", "reference"])
@pytest.mark.parametrize("codes,why", [
    ([0, -2], r"below -1|is negative"), ([2 * 7], r"outside \[0, 7\)"),
    ([4, 5], "appears twice")])
def test_encode_rejects_bad_codes(impl, codes, why, compiled):
    fn = (ops.packed_signs_encode if impl == "compiled" else
          reference.packed_signs_encode)
    with pytest.raises(tf.errors.InvalidArgumentError, match=why):
        fn(tf.constant(codes, tf.int32), 7)


def test_vote_checks_shapes_and_weights(compiled):
    with pytest.raises(ValueError, match=r"shape \[M, 1\]"):
        ops.packed_signs_vote(tf.zeros([2, 2], tf.int32), 7)
    with pytest.raises(tf.errors.InvalidArgumentError, match="finite"):
        ops.packed_signs_vote(tf.zeros([2, 1], tf.int32), 7,
                              tf.constant([1.0, np.inf]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"shape \[2\]"):
        ops.packed_signs_vote(tf.zeros([2, 1], tf.int32), 7,
                              tf.constant([1.0]))


def test_invalid_rows_raise_or_abstain():
    codec = PackedSignsCodec(7, 7, False)
    good = 34 | 5 << 8
    rows = tf.constant([[good], [243], [9 << 8], [-1]], tf.int32)
    # byte 243 is no base-3 byte; 9 << 8 sets a digit for coordinate 7.
    assert codec.decode(rows, "drop").valid.numpy().tolist() == [
        True, False, False, False]
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"row 1 \(of 4\) is not a valid message"):
        codec.decode(rows, "raise")
    # A row of -1 words (how the aggregation mutes a row) abstains.
    assert row_signs(tf.constant([-1]), 7).numpy().tolist() == [0.0] * 7


# -- the automatic choice -------------------------------------------------

@pytest.mark.parametrize("settings,parts", [
    (dict(density=1.0, error_feedback=False),
     ("EverySign", "packed", "PackedMajorityVote")),
    (dict(density=1.0, error_feedback=False, vote="weighted", wire="rice"),
     ("EverySign", "packed", "PackedWeightedVote")),
    (dict(density=1.0, k=None), ("EverySign", "packed",
                                 "PackedMajorityVote")),
    (dict(density=0.5, wire="packed"), ("TopKSigns", "packed",
                                        "PackedMajorityVote")),
    (dict(density=0.01), ("TopKSigns", "int32", "MajorityVote")),
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
    assert (type(agg.selector).__name__, agg.codec.name,
            type(agg.combiner).__name__) == parts


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
    assert agg.codec.name == "packed" and old.codec.name == "int32"
    for a, b in zip(packed, int32):
        assert a.view(np.uint32).tolist() == b.view(np.uint32).tolist()
    for a, b in zip(packed_mem, int32_mem):
        assert a.view(np.uint32).tolist() == b.view(np.uint32).tolist()
    if settings.get("vote") == "weighted":
        np.testing.assert_array_equal(agg.combiner.agree.numpy(),
                                      old.combiner.agree.numpy())
        np.testing.assert_array_equal(agg.combiner.disagree.numpy(),
                                      old.combiner.disagree.numpy())
    # 32x fewer bits per coordinate than int32 codes, less the framing.
    n = sum(agg.layout.sizes)
    assert agg.codec.words == -(-n // 20) and old.codec.words == n


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
    assert aggregator_of(model.optimizer).codec.name == "packed"
    assert hist.history["comm_dropped_rows"] == [3]
