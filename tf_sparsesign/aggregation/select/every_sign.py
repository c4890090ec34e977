"""Every sign, no selection: signSGD-MV (``method="sign_vote"`` when every
tensor sends all its entries, chosen by
:func:`tf_sparsesign.aggregation.registry.choose`)."""

from __future__ import annotations

import tensorflow as tf

from ...constants import PAD_CODE
from ...reference.sign import selected_values
from . import NotInPlace, Selection


class EverySign(NotInPlace):
    """The sign of every nonzero entry, without any top-K work: entry ``i``
    gives the code ``(i << 1) | (e_i < 0)``, a zero entry gives ``-1`` in
    its own place (it abstains). The codes are those the top-K encode op
    returns for ``k = size(e)``, except that the ``-1`` entries sit where
    the zeros are instead of at the tail; the packed codec reads codes by
    index, so the message is the same. ``-0.0`` is zero; NaN is an error,
    as in the encode op. The residual (error feedback) is ``e`` with every
    sent entry cleared: only its zeros remain."""

    def __init__(self, seed: int = 0, want_values: bool = False):
        del seed  # deterministic
        self.want_values = bool(want_values)

    def select(self, e, k: int, index: int,
               keep_residual: bool) -> Selection:
        size = e.shape.num_elements()
        if k != size:
            raise ValueError(f"EverySign sends every entry: k must be the "
                             f"tensor's size {size}, got {k}")
        flat = tf.reshape(e, [-1])
        check = tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(tf.math.is_nan(flat))),
            ["EverySign: the tensor contains NaN"])
        with tf.control_dependencies([check]):
            sent = tf.not_equal(flat, 0)
        codes = tf.where(sent, 2 * tf.range(size, dtype=tf.int32) +
                         tf.cast(flat < 0, tf.int32), PAD_CODE)
        values = selected_values(e, codes) if self.want_values else None
        if not keep_residual:
            return Selection(codes, None, values)
        residual = tf.where(sent, tf.zeros_like(flat), flat)
        return Selection(codes, tf.reshape(residual, tf.shape(e)), values)
