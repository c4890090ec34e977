"""Vote rules: the gathered rows -> one sparse update (the
:class:`~tf_sparsesign.aggregation.interfaces.VoteRule` contract).

A rule is built once, ``Rule(state, num_replicas, on_invalid)`` (it may
create its own state with ``state.tracked(...)``; ``on_invalid`` is bound:
``"raise"`` makes a malformed row an error, ``"drop"`` lets it abstain and
counts it), and called once per step and host (or shard), in cross-replica
context::

    combine(codes, values, num_elements) -> (SparseUpdate, dropped)

``codes`` is int32 ``[M, k]`` (rows dropped before, e.g. for a foreign
settings fingerprint, are all padding), ``values`` float32 ``[M, k]`` or
None, ``num_elements`` the coordinates voted (the whole index space, or one
shard's). The :class:`SparseUpdate` holds the global indices (ascending,
unique, int32) where the update may be nonzero and the update there
(float32): no vector of the whole index space is ever built. ``dropped``
counts rows the rule found malformed. State a rule assigns here is
assigned on every local replica at once.

A rule that learns from the votes has ``learns = True`` and offers
``observe(codes, update) -> delta`` and ``apply(delta)`` (deltas are summed
over shards and hosts first); the others derive from :class:`Stateless`.

Register a vote rule in :data:`tf_sparsesign.aggregation.registry.VOTES`
(and its packed form in ``PACKED_VOTES``).
"""

from __future__ import annotations

import tensorflow as tf

from ... import ops
from ...reference.sign import invalid_rows
from ..interfaces import SparseUpdate

__all__ = ["SparseUpdate", "Stateless", "VOTE", "LIVE", "votes_at",
           "row_signs"]


class Stateless:
    """A rule that learns nothing from the votes (``learns = False``)."""

    learns = False

    def __init__(self, state, num_replicas: int, on_invalid: str = "raise"):
        del state, num_replicas  # stateless
        self.vote = VOTE[on_invalid]

    def observe(self, codes, update: SparseUpdate) -> tf.Tensor:
        """Nothing to learn (never called: ``learns`` is False)."""
        return tf.zeros([0], tf.float32)

    def apply(self, delta) -> None:
        """Nothing to learn."""


def _vote_raising(codes, num_elements: int, weights):
    indices, tallies = ops.sparse_majority_vote(
        codes, num_elements, weights, return_tallies=True)
    return (SparseUpdate(indices, tf.sign(tallies), tf.abs(tallies)),
            tf.zeros([], tf.int32))


def _vote_dropping(codes, num_elements: int, weights):
    indices, tallies, dropped = ops.sparse_majority_vote(
        codes, num_elements, weights, on_invalid="drop", return_tallies=True)
    return SparseUpdate(indices, tf.sign(tallies), tf.abs(tallies)), dropped


#: The majority vote ``(codes, num_elements, weights) -> (SparseUpdate,
#: dropped)`` by ``on_invalid`` (a rule takes its function when built):
#: values ``sign(tally)``, scores ``|tally|``; ``"raise"``: a malformed row
#: is an error, ``"drop"``: it abstains and is counted.
VOTE = {"raise": _vote_raising, "drop": _vote_dropping}


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


#: Which codes count, by ``on_invalid``: ``"raise"``: every real code (an
#: invalid row fails the vote, so it is not checked again); ``"drop"``: not
#: those of rows the vote rejects (they abstain, see
#: :func:`~tf_sparsesign.ops.sparse_majority_vote`).
LIVE = {"raise": lambda codes, num_elements: codes >= 0,
        "drop": lambda codes, num_elements: (codes >= 0) & ~invalid_rows(
            codes, num_elements)[:, None]}


def row_signs(codes, num_elements: int, live=LIVE["raise"]):
    """``(live, index, sign)`` of every code in ``codes`` (int32 ``[M,
    k]``): ``live`` marks the codes that count (``live``, one of
    :data:`LIVE`), ``index`` their coordinate (clamped into range) and
    ``sign`` ±1.0 (float32)."""
    index = tf.clip_by_value(codes // 2, 0, num_elements - 1)
    sign = tf.cast(1 - 2 * (codes % 2), tf.float32)
    return live(codes, num_elements), index, sign
