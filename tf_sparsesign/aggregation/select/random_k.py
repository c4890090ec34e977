"""Random-K signs: ``k`` uniformly random coordinates' signs (a baseline)."""

from __future__ import annotations

import tensorflow as tf

from ...constants import PAD_CODE
from ...reference.sign import selected_values
from . import NotInPlace, Selection


class RandomK(NotInPlace):
    """The signs of ``k`` coordinates drawn without replacement (zeros
    among them are not sent). The draw depends on ``seed + index`` and the
    op's own random state, so replicas draw independently."""

    def __init__(self, seed: int = 0, want_values: bool = False):
        self.seed = int(seed)
        self.want_values = bool(want_values)

    def select(self, e, k: int, index: int,
               keep_residual: bool) -> Selection:
        flat = tf.reshape(e, [-1])
        size = e.shape.num_elements()  # static (the layout checked it)
        chosen = tf.sort(tf.random.shuffle(tf.range(size),
                                           seed=self.seed + index)[:k])
        picked = tf.gather(flat, chosen)
        codes = tf.where(tf.not_equal(picked, 0),
                         chosen * 2 + tf.cast(picked < 0, tf.int32),
                         PAD_CODE)
        values = selected_values(e, codes) if self.want_values else None
        if not keep_residual:
            return Selection(codes, None, values)
        residual = tf.tensor_scatter_nd_update(flat, chosen[:, None],
                                               tf.zeros_like(picked))
        return Selection(codes, tf.reshape(residual, tf.shape(e)), values)
