"""Wire format v1 as is: one int32 code per entry (values, if any, follow
as float32 bit patterns)."""

from __future__ import annotations

import tensorflow as tf

from . import Decoded


class Int32Codec:
    """``[codes (k), values (k, bitcast)]``; no decoding needed (the vote
    validates the codes)."""

    name = "int32"

    def __init__(self, num_elements: int, k: int, with_values: bool,
                 on_invalid: str = "raise"):
        del num_elements, on_invalid  # the vote validates the codes
        self.k = int(k)
        self.with_values = with_values
        self.words = self.k * (2 if with_values else 1)

    def encode(self, codes, values=None) -> tf.Tensor:
        if not self.with_values:
            return codes
        return tf.concat([codes, tf.bitcast(values, tf.int32)], 0)

    def decode(self, rows) -> Decoded:
        values = (tf.bitcast(rows[:, self.k:], tf.float32)
                  if self.with_values else None)
        return Decoded(rows[:, :self.k], values,
                       tf.ones([tf.shape(rows)[0]], tf.bool))
