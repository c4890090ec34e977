"""Top-K values: the baseline that sends the selected entries' values too
(top-K SGD with error feedback); combined by the mean of what was sent."""

from __future__ import annotations

import tensorflow as tf

from .topk_signs import TopKSigns
from . import Selection


class TopKValues(TopKSigns):
    """:class:`TopKSigns` plus each selected entry's value (float32)."""

    select_in_place = None  # the values are read from e: not fused

    def select(self, e, k: int, slot: int, keep_residual: bool) -> Selection:
        chosen = super().select(e, k, slot, keep_residual)
        index = tf.maximum(chosen.codes, 0) // 2
        sent = tf.gather(tf.reshape(tf.cast(e, tf.float32), [-1]), index)
        values = tf.where(chosen.codes >= 0, sent, 0.0)
        return chosen._replace(values=values)
