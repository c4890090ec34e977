"""The packed-signs ops and codec: the format, compiled == reference, the
vote read from packed rows == majority_vote over codes (bit for bit), bad
input. (Op level only: scripts/asan_ops.sh runs this file.)"""

import numpy as np
import pytest
import tensorflow as tf

from tf_sparsesign import ops, policy
from tf_sparsesign.aggregation.codec.packed_signs import PackedSignsCodec
from tf_sparsesign.aggregation.select.every_sign import EverySign
from tf_sparsesign.reference import packed as reference
from tf_sparsesign.reference.packed import row_signs


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
    decoded = codec.decode(words[None, :])
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
    assert PackedSignsCodec(7, 7, False, "drop").decode(
        rows).valid.numpy().tolist() == [
        True, False, False, False]
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"row 1 \(of 4\) is not a valid message"):
        codec.decode(rows)
    # A row of -1 words (how the aggregation mutes a row) abstains.
    assert row_signs(tf.constant([-1]), 7).numpy().tolist() == [0.0] * 7
