"""Combine rules: the gathered rows -> one update in the global space.

A rule is built once, ``Rule(state, num_replicas, num_elements)`` (it may
create its own state with ``state.tracked(...)``), and called per step::

    combine(codes, values, on_invalid) -> (update, dropped)

``codes`` is int32 ``[M, k]`` (rows that were dropped before, e.g. for a
foreign settings fingerprint, are all padding), or the packed rows
``[M, W]`` for the rules of ``registry.PACKED_VOTES``; ``values`` float32
``[M, k]`` or None. ``update`` is float32 ``[num_elements]``; ``dropped``
counts rows the rule found malformed (``on_invalid="drop"``; with
``"raise"`` they are an error).

Register a vote rule in :data:`tf_sparsesign.aggregation.registry.VOTES`.
"""

from __future__ import annotations

import tensorflow as tf

from ... import ops


def vote(codes, num_elements: int, weights, on_invalid: str):
    """``majority_vote`` returning ``(votes, dropped)`` in both modes."""
    if on_invalid == "raise":
        return (ops.majority_vote(codes, num_elements, weights),
                tf.zeros([], tf.int32))
    return ops.majority_vote(codes, num_elements, weights, on_invalid="drop")
