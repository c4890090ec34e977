"""Rice-coded index gaps plus a sign bit per entry (docs/WIRE.md), padded
with zero words to the worst case so every replica's message has one
shape."""

from __future__ import annotations

import tensorflow as tf

from ... import ops, policy
from . import Decoded


class RiceCodec:
    """About ``log2(N/K) + 2.5`` bits per entry, within ~1% of the floor;
    messages are padded to :func:`tf_sparsesign.policy.rice_max_words`
    (about 5% above a typical one)."""

    name = "rice"

    def __init__(self, num_elements: int, k: int, with_values: bool,
                 on_invalid: str = "raise"):
        if with_values:
            raise ValueError("the Rice codec carries positions and signs, "
                             "not values")
        self.num_elements, self.k = int(num_elements), int(k)
        self.words = policy.rice_max_words(self.num_elements, self.k)
        self._decode = DECODERS[on_invalid]

    def encode(self, codes, values=None) -> tf.Tensor:
        return ops.rice_encode(codes, self.num_elements, pad_to=self.words)

    def decode(self, rows) -> Decoded:
        return self._decode(rows, self.num_elements, self.k)


def _decode_raising(rows, num_elements: int, k: int) -> Decoded:
    """An undecodable row is an error."""
    codes = ops.rice_decode(rows, num_elements, k)
    return Decoded(codes, None, tf.ones([tf.shape(rows)[0]], tf.bool))


def _decode_dropping(rows, num_elements: int, k: int) -> Decoded:
    """An undecodable row abstains."""
    codes, valid = ops.rice_decode(rows, num_elements, k, on_invalid="drop")
    return Decoded(codes, None, valid)


#: Rice rows back to codes, by ``on_invalid`` (chosen when built).
DECODERS = {"raise": _decode_raising, "drop": _decode_dropping}
