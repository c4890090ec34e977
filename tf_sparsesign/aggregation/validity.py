"""What a malformed row does, chosen once by ``on_invalid``.

``REACT[on_invalid](valid, describe) -> (valid, checks)``: with ``"raise"``
every row must be valid (``checks`` holds an assertion whose message is
``describe(first_bad_row, rows)``, a string tensor; run ``checks`` before
using the rows; the rows then all count); with ``"drop"`` the mask is
returned as it is and the invalid rows abstain.
"""

from __future__ import annotations

import tensorflow as tf


def _raising(valid, describe):
    m = tf.shape(valid)[0]
    first = tf.reduce_min(tf.concat([tf.where(valid, m, tf.range(m)), [m]],
                                    0))
    check = tf.debugging.Assert(tf.reduce_all(valid), [describe(first, m)])
    return tf.ones_like(valid), [check]


def _dropping(valid, describe):
    del describe
    return valid, []


#: See the module docstring.
REACT = {"raise": _raising, "drop": _dropping}
