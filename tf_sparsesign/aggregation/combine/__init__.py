"""Combine rules: the gathered rows -> one sparse update.

A rule is built once, ``Rule(state, num_replicas, num_elements)`` (it may
create its own state with ``state.tracked(...)``), and called once per step
and host, in cross-replica context::

    combine(codes, values, on_invalid) -> (SparseUpdate, dropped)

``codes`` is int32 ``[M, k]`` (rows dropped before, e.g. for a foreign
settings fingerprint, are all padding), ``values`` float32 ``[M, k]`` or
None. The :class:`SparseUpdate` holds the global indices (ascending, unique,
int32) where the update may be nonzero and the update there (float32): no
vector of the whole index space is ever built. ``dropped`` counts rows the rule found malformed
(``on_invalid="drop"``; with ``"raise"`` they are an error). State a rule
assigns here is assigned on every local replica at once.

Register a vote rule in :data:`tf_sparsesign.aggregation.registry.VOTES`.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from ... import ops
from ...reference.sign import invalid_rows


class SparseUpdate(NamedTuple):
    """The step's update where it may be nonzero (see the package
    docstring)."""

    indices: tf.Tensor
    values: tf.Tensor
    scores: tf.Tensor | None = None


def vote(codes, num_elements: int, weights, on_invalid: str):
    """The majority vote as ``(SparseUpdate, dropped)`` in both modes:
    values ``sign(tally)``, scores ``|tally|``."""
    if on_invalid == "raise":
        indices, tallies = ops.sparse_majority_vote(
            codes, num_elements, weights, return_tallies=True)
        dropped = tf.zeros([], tf.int32)
    else:
        indices, tallies, dropped = ops.sparse_majority_vote(
            codes, num_elements, weights, on_invalid="drop",
            return_tallies=True)
    return SparseUpdate(indices, tf.sign(tallies), tf.abs(tallies)), dropped


def votes_at(update: SparseUpdate, codes) -> tf.Tensor:
    """float32 like ``codes``: the update at each code's index (0 for
    padding and for indices without an update)."""
    index = tf.maximum(codes, 0) // 2
    pos = tf.searchsorted(update.indices, tf.reshape(index, [-1]))
    pos = tf.reshape(pos, tf.shape(codes))
    padded = tf.concat([update.indices, [-1]], 0)  # pos may be U
    hit = (tf.gather(padded, pos) == index) & (codes >= 0)
    values = tf.gather(tf.concat([update.values, [0.0]], 0), pos)
    return tf.where(hit, values, 0.0)


def row_signs(codes, num_elements: int, on_invalid: str = "raise"):
    """``(live, index, sign)`` of every code in ``codes`` (int32 ``[M,
    k]``): ``live`` marks real codes (not padding), ``index`` their
    coordinate (clamped into range) and ``sign`` ±1.0 (float32). With
    ``on_invalid="drop"`` the codes of rows the vote rejects are not live
    (an invalid row abstains, see
    :func:`~tf_sparsesign.ops.sparse_majority_vote`); with ``"raise"`` such
    a row fails the vote, so it is not checked here.
    """
    live = codes >= 0
    if on_invalid == "drop":
        live &= ~invalid_rows(codes, num_elements)[:, None]
    index = tf.clip_by_value(codes // 2, 0, num_elements - 1)
    sign = tf.cast(1 - 2 * (codes % 2), tf.float32)
    return live, index, sign
