"""Codecs: a replica's codes (and values) as int32 words, and back.

A codec is built once, ``Codec(num_elements, k, with_values)`` (the global
index space, the step's total entries, whether values ride along), and
offers::

    words                      the static message length (int32 words)
    encode(codes, values)      -> int32 [words]
    decode(rows, on_invalid)   -> Decoded for the gathered [M, words]

:class:`Decoded` holds ``codes`` (int32 ``[M, k]``), ``values`` (float32
``[M, k]`` or None) and ``valid`` (bool ``[M]``: rows that decoded; with
``on_invalid="raise"`` an undecodable row is an error instead). A packed
codec (``registry._PACKED``, e.g. :mod:`.packed_signs`) returns its checked
rows as they are instead of codes, for the vote rules of
``registry.PACKED_VOTES``; a row of ``-1`` words must abstain there, as
a row of ``-1`` codes does.

Register a new codec in :data:`tf_sparsesign.aggregation.registry.CODECS`.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf


class Decoded(NamedTuple):
    """The gathered messages as codes (see the package docstring)."""

    codes: tf.Tensor
    values: tf.Tensor | None
    valid: tf.Tensor
