"""Combine rules: the gathered rows -> one update in the global space.

A rule is built once, ``Rule(state, num_replicas, num_elements)`` (it may
create its own state with ``state.tracked(...)``), and called per step::

    combine(codes, values, on_invalid) -> (update, dropped)

``codes`` is int32 ``[M, k]`` (rows that were dropped before, e.g. for a
foreign settings fingerprint, are all padding), ``values`` float32
``[M, k]`` or None. ``update`` is float32 ``[num_elements]``; ``dropped``
counts rows the rule found malformed (``on_invalid="drop"``; with
``"raise"`` they are an error).

Register a vote rule in :data:`tf_sparsesign.aggregation.registry.VOTES`.
"""

from __future__ import annotations

import tensorflow as tf

from ... import ops
from ...reference.sign import invalid_rows


def vote(codes, num_elements: int, weights, on_invalid: str):
    """``majority_vote`` returning ``(votes, dropped)`` in both modes."""
    if on_invalid == "raise":
        return (ops.majority_vote(codes, num_elements, weights),
                tf.zeros([], tf.int32))
    return ops.majority_vote(codes, num_elements, weights, on_invalid="drop")


def row_signs(codes, num_elements: int, on_invalid: str = "raise"):
    """``(live, index, sign)`` of every code in ``codes`` (int32 ``[M,
    k]``): ``live`` marks real codes (not padding), ``index`` their
    coordinate (clamped into range) and ``sign`` ±1.0 (float32). With
    ``on_invalid="drop"`` the codes of rows the vote rejects are not live
    (an invalid row abstains, see :func:`~tf_sparsesign.ops.majority_vote`);
    with ``"raise"`` such a row fails the vote, so it is not checked here.
    """
    live = codes >= 0
    if on_invalid == "drop":
        live &= ~invalid_rows(codes, num_elements)[:, None]
    index = tf.clip_by_value(codes // 2, 0, num_elements - 1)
    sign = tf.cast(1 - 2 * (codes % 2), tf.float32)
    return live, index, sign
