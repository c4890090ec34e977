"""What a shard owner returns in the sharded exchange: its shard's vote.

Coordinate ``i`` of the global index space is local coordinate ``i // M``
of shard ``i % M``. A downlink message carries one shard's update as codes
``(local << 1) | (vote < 0)``; decoding every shard's message gives the
global update.

* :class:`ExactRice` — every nonzero vote, Rice-coded; messages are padded
  to the longest actual one of the step (one tiny all-gather of lengths
  first), so the bytes follow the votes, not a worst case.
* :class:`ExactTernary` — the whole shard as a packed ternary vector, 5
  trits per byte (fixed size; smaller when most coordinates got a vote).
* :class:`TopK` — the ``ceil(K/M)`` coordinates of largest ``|tally|``
  (ties: the lower index), Rice-coded, fixed size: O(K) per worker
  whatever M. This changes the algorithm (it is a top-K of the vote).

Which one runs is chosen once (``policy.downlink_format``).
"""

from __future__ import annotations

import tensorflow as tf

from ... import ops, policy
from ...constants import PAD_CODE
from ..codec.rice import DECODERS
from ..interfaces import SparseUpdate
from ..validity import REACT


def _codes(update: SparseUpdate) -> tf.Tensor:
    return update.indices * 2 + tf.cast(update.values < 0, tf.int32)


def _to_global(local_codes, m: int, valid) -> SparseUpdate:
    """Rows ``[M, capacity]`` of shard-local codes (row b: shard b) -> the
    global update, ascending."""
    live = (local_codes >= 0) & valid[:, None]
    shard = tf.broadcast_to(tf.range(tf.shape(local_codes)[0])[:, None],
                            tf.shape(local_codes))
    index = tf.boolean_mask((local_codes // 2) * m + shard, live)
    vote = tf.boolean_mask(1.0 - 2.0 * tf.cast(local_codes % 2, tf.float32),
                           live)
    order = tf.argsort(index)
    return SparseUpdate(tf.gather(index, order), tf.gather(vote, order))


class _Rice:
    """Rice messages of at most ``capacity`` entries over a shard."""

    def __init__(self, shard_size: int, capacity: int, m: int,
                 on_invalid: str = "raise"):
        self.shard_size, self.capacity, self.m = shard_size, capacity, m
        self._decode = DECODERS[on_invalid]

    def decode(self, words):
        """``(SparseUpdate, valid [M])`` of the gathered messages."""
        decoded = self._decode(words, self.shard_size, self.capacity)
        return _to_global(decoded.codes, self.m, decoded.valid), \
            decoded.valid


class ExactRice(_Rice):
    """Every nonzero vote; variable length (padded per step)."""

    fixed_words = None

    def encode(self, update: SparseUpdate) -> tf.Tensor:
        return ops.rice_encode(_codes(update), self.shard_size)


class TopK(_Rice):
    """The ``capacity`` coordinates of largest ``|tally|``; fixed
    length."""

    def __init__(self, shard_size: int, capacity: int, m: int,
                 on_invalid: str = "raise"):
        super().__init__(shard_size, capacity, m, on_invalid)
        self.fixed_words = policy.rice_max_words(shard_size, capacity)

    def encode(self, update: SparseUpdate) -> tf.Tensor:
        u = tf.shape(update.indices)[0]
        # top_k keeps the lower position (= lower index) first among ties.
        _, best = tf.math.top_k(update.scores, k=tf.minimum(u, self.capacity))
        best = tf.sort(best)
        codes = tf.gather(_codes(update), best)
        codes = tf.pad(codes, [[0, self.capacity - tf.shape(codes)[0]]],
                       constant_values=PAD_CODE)
        return ops.rice_encode(codes, self.shard_size,
                               pad_to=self.fixed_words)


class ExactTernary:
    """The shard's votes as trits (0, +1, -1 -> 0, 1, 2), 5 per byte."""

    def __init__(self, shard_size: int, capacity: int, m: int,
                 on_invalid: str = "raise"):
        del capacity  # every coordinate has its digit
        self.shard_size, self.m = shard_size, m
        self._react = REACT[on_invalid]
        self.fixed_words = policy.ternary_words(shard_size)
        self._trits = 20 * self.fixed_words  # 5 per byte, 4 bytes per word

    def encode(self, update: SparseUpdate) -> tf.Tensor:
        trit = tf.where(update.values > 0, 1, 2)
        dense = tf.scatter_nd(update.indices[:, None], trit, [self._trits])
        digits = tf.reshape(dense, [-1, 5]) * [1, 3, 9, 27, 81]
        packed = tf.cast(tf.reduce_sum(digits, 1), tf.uint8)
        return tf.bitcast(tf.reshape(packed, [-1, 4]), tf.int32)

    def decode(self, words):
        m = tf.shape(words)[0]
        packed = tf.cast(tf.reshape(tf.bitcast(words, tf.uint8), [m, -1]),
                         tf.int32)
        digits = tf.stack([(packed // p) % 3 for p in (1, 3, 9, 27, 81)], -1)
        trits = tf.reshape(digits, [m, -1])[:, :self.shard_size]
        # A byte above 242 holds no 5 trits: that message is malformed.
        valid, checks = self._react(
            tf.reduce_all(packed < 243, axis=1),
            lambda first, rows: tf.strings.format(
                "sparse-sign downlink: a packed ternary message holds a byte "
                "above 242 (not 5 trits): shard {}", (first,)))
        with tf.control_dependencies(checks):
            local = tf.where(trits > 0,
                             tf.range(self.shard_size)[None, :] * 2 +
                             tf.cast(trits == 2, tf.int32), PAD_CODE)
        return _to_global(local, self.m, valid), valid


#: The downlink parts by ``(policy.downlink_format's format, downlink=)``.
FORMATS = {("ternary", "exact"): ExactTernary, ("rice", "exact"): ExactRice,
           ("rice", "topk"): TopK}


def make(n: int, total_k: int, m: int, downlink: str, alpha: float,
         on_invalid: str = "raise"):
    """The downlink part for these sizes (``policy.downlink_format``)."""
    fmt, capacity, _ = policy.downlink_format(n, total_k, m, downlink, alpha)
    return FORMATS[fmt, downlink](policy.shard_size(n, m), capacity, m,
                                  on_invalid)
