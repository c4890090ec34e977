"""Packed signs: every coordinate as one ternary digit (sent +, sent -, not
sent), five digits per byte: 1.6 bits per coordinate whatever K.

Format (docs/WIRE.md): ``ceil(N / 20)`` int32 words. Coordinate ``i`` is
digit ``i % 5`` (base 3, least significant first) of byte ``(i % 20) //
5`` of word ``i // 20``, byte ``b`` being bits ``8b .. 8b+7`` of the word
(``word = sum(byte_b << 8b)``, the same on every machine). Digit 0: not
sent (abstains; zeros abstain, as with codes), 1: +, 2: -. A valid message
has every byte at most 242 (``3**5 - 1``) and digit 0 past coordinate
``N``. A row of ``-1`` words (how the aggregation marks a row that must
abstain) has bytes 255 and abstains everywhere.

This is signSGD-MV's codec (chosen automatically for ``density=1``,
``method="sign_vote"``), and ``wire="packed"`` for any density: above ~5%
(int32 codes) or ~45% (Rice) it is the smallest message. Zeros abstain
(a second state per coordinate, hence log2(3) bits, not one) so that the
vote is exactly the vote of codes; sending them as +1 (one bit) would push
every coordinate with a zero gradient (dead ReLUs, unused embedding rows)
by ``-lr`` whenever the majority of such zeros wins.
"""

from __future__ import annotations

import tensorflow as tf

from ... import ops, policy
from ...constants import PACKED_DIGITS_PER_BYTE, PACKED_MAX_BYTE
from ..validity import REACT
from . import Decoded


def _tail_limits(num_elements: int, words: int) -> list[int]:
    """Per byte of the last word: one more than its largest valid value
    (digits past ``num_elements`` must be 0)."""
    left = num_elements - (words - 1) * 4 * PACKED_DIGITS_PER_BYTE
    limits = []
    for b in range(4):
        digits = min(max(left - b * PACKED_DIGITS_PER_BYTE, 0),
                     PACKED_DIGITS_PER_BYTE)
        limits.append(3 ** digits)
    return limits


class PackedSignsCodec:
    """Codes in, packed ternary digits out (see the module docstring;
    :func:`tf_sparsesign.ops.packed_signs_encode`). ``decode`` checks the
    rows and hands them on packed: the vote rules of
    :mod:`..combine.packed_votes` read them straight from the digits
    (:func:`tf_sparsesign.ops.packed_signs_vote`), so no ``[M, N]`` array
    of codes is ever made."""

    name = "packed"

    def __init__(self, num_elements: int, k: int, with_values: bool,
                 on_invalid: str = "raise"):
        if with_values:
            raise ValueError("the packed codec carries signs, not values")
        self.num_elements = int(num_elements)
        self._react = REACT[on_invalid]
        self.words = policy.codec_words(self.name, self.num_elements, k)

    def encode(self, codes, values=None) -> tf.Tensor:
        """Codes (any order; ``-1`` anywhere) as the packed message."""
        return ops.packed_signs_encode(codes, self.num_elements)

    def decode(self, rows) -> Decoded:
        valid, checks = self._react(self._valid_rows(rows), self._describe)
        with tf.control_dependencies(checks):
            rows = tf.identity(rows)
        return Decoded(rows, None, valid)

    def _describe(self, first, m):
        return tf.strings.format(
            "packed signs: row {} (of {}) is not a valid message: a byte "
            "above 242, or a nonzero digit at a coordinate >= {}",
            (first, m, self.num_elements))

    def _valid_rows(self, rows) -> tf.Tensor:
        """bool ``[M]``: every byte <= 242, digits past N zero."""
        bad = tf.zeros(tf.shape(rows)[:1], tf.bool)
        if self.words == 0:  # no coordinates: nothing can be wrong
            return ~bad
        last = rows[:, -1]
        for b, limit in enumerate(_tail_limits(self.num_elements,
                                               self.words)):
            shift = 8 * b
            byte = tf.bitwise.bitwise_and(
                tf.bitwise.right_shift(rows, shift), 255)
            tail = tf.bitwise.bitwise_and(
                tf.bitwise.right_shift(last, shift), 255)
            bad |= tf.reduce_any(byte > PACKED_MAX_BYTE, 1) | (tail >= limit)
        return ~bad
