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

    def __init__(self, num_elements: int, k: int, with_values: bool):
        if with_values:
            raise ValueError("the Rice codec carries positions and signs, "
                             "not values")
        self.num_elements, self.k = int(num_elements), int(k)
        self.words = policy.rice_max_words(self.num_elements, self.k)

    def encode(self, codes, values=None) -> tf.Tensor:
        return ops.rice_encode(codes, self.num_elements, pad_to=self.words)

    def decode(self, rows, on_invalid: str) -> Decoded:
        if on_invalid == "raise":  # an undecodable row is an error
            codes = ops.rice_decode(rows, self.num_elements, self.k)
            return Decoded(codes, None, tf.ones([tf.shape(rows)[0]],
                                                tf.bool))
        codes, valid = ops.rice_decode(rows, self.num_elements, self.k,
                                       on_invalid="drop")
        return Decoded(codes, None, valid)
