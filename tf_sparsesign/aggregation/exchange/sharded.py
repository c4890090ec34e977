"""The sharded exchange: per-worker traffic that stays flat as workers grow.

Coordinate ``i`` of the step's global index space belongs to replica
``i mod M`` (striding spreads every layer over all replicas). Per step:

1. **buckets** (every replica) — its codes sorted into M buckets of
   capacity ``C = ceil(alpha K / M)``, in each shard's local index space
   (``i // M``), written by the codec behind the settings fingerprint. Codes
   that do not fit are not sent: they go back into the error-feedback memory
   (nothing lost, only delayed) and are counted (``comm_overflow``).
2. **all-to-all** — bucket j to replica j (one collective; a transpose on
   one host).
3. **vote per shard** — each replica votes its shard over the M buckets it
   received, with the configured vote rule.
4. **downlink** — each shard's vote to everyone (one all-gather):
   ``"exact"`` (every nonzero vote: without overflow bit-identical to the
   all-gather exchange) or ``"topk"`` (the ``ceil(K/M)`` strongest, O(K)
   per worker whatever M), see :mod:`.downlink`.

Trust: in the all-gather exchange every worker computes the vote itself
from everyone's rows; here a worker trusts the shard owners for their
shards' votes. A rule that learns from the vote (the weighted vote) sums its
per-shard observations over all replicas (one small all-reduce).
"""

from __future__ import annotations

import tensorflow as tf

from ... import policy
from ...constants import PAD_CODE
from ..interfaces import HostResult, Message
from . import ExchangeSetup
from . import downlink as downlink_lib
from .allgather import read


class ShardedExchange:
    """Buckets up, shard votes down (see the module docstring). Codes that
    do not fit their bucket go back to the error-feedback memory
    (``gives_back``; counted by the ``overflow`` counter)."""

    gives_back = True

    def __init__(self, setup: ExchangeSetup):
        if setup.with_values:
            raise ValueError("aggregation='sharded' votes signs; it cannot "
                             "carry values (use aggregation='allgather')")
        n, k, m = setup.num_elements, setup.total_k, setup.num_replicas
        self.m, self.num_elements = m, n
        self.capacity = policy.bucket_capacity(k, m, setup.shard_capacity)
        self.shard_size = policy.shard_size(n, m)
        self.shard_sizes = [(n - b + m - 1) // m for b in range(m)]
        self.codec = setup.codec(self.shard_size, self.capacity, False,
                                 setup.on_invalid)
        self.downlink = downlink_lib.make(n, k, m, setup.downlink,
                                          setup.shard_capacity,
                                          setup.on_invalid)
        self.rule = setup.rule
        self.frame = setup.frame
        self.collectives = setup.collectives
        self.adversary = setup.adversary
        self.message_shape = (m, 1 + self.codec.words)

    # -- replica context ---------------------------------------------------

    def message(self, codes, values) -> Message:
        """``[M, 1 + W]`` buckets and the mask of codes they carry."""
        m, cap = self.m, self.capacity
        live = codes >= 0
        index = codes // 2
        owner = tf.where(live, index % m, m)  # padding sorts last
        order = tf.argsort(owner, stable=True)  # buckets keep index order
        sorted_owner = tf.gather(owner, order)
        first = tf.searchsorted(sorted_owner, tf.range(m + 1))
        position = tf.range(tf.size(codes)) - tf.gather(first, sorted_owner)
        fits = (sorted_owner < m) & (position < cap)
        sorted_codes = tf.gather(codes, order)
        local = (sorted_codes // 2 // m) * 2 + sorted_codes % 2
        target = tf.boolean_mask(sorted_owner * cap + position, fits)
        buckets = tf.tensor_scatter_nd_update(
            tf.fill([m * cap], PAD_CODE), target[:, None],
            tf.boolean_mask(local, fits))
        buckets = tf.reshape(buckets, [m, cap])
        words = tf.stack([self.codec.encode(buckets[j]) for j in range(m)])
        words = self.adversary.corrupt_message(words, self.codec.name,
                                               self.shard_size)
        kept = tf.scatter_nd(order[:, None], tf.cast(fits, tf.int32),
                             tf.shape(codes)) > 0
        return Message(self.frame.wrap(words), kept)

    def stats(self) -> dict:
        return {}  # fixed when built

    def wire(self, words, down_words) -> tuple:
        """Own buckets and downlink message; M-1 of each cross the link."""
        return policy.sharded_wire(tf.cast(tf.shape(words)[-1], tf.int64),
                                   tf.cast(down_words, tf.int64) + 1,
                                   self.m)

    # -- host step (cross-replica context) ------------------------------------

    def host_step(self, local: list) -> HostResult:
        shards = self.collectives.replica_ids(local)
        received = self.collectives.all_to_all(local)
        down, dropped, deltas = [], tf.zeros([], tf.int32), []
        for shard, rows in zip(shards, received):
            codes, _, bad = read(self.frame, self.codec, rows)
            update, malformed = self.rule.combine(codes, None,
                                                  self.shard_sizes[shard])
            dropped += bad + malformed
            down.append(self.downlink.encode(update))
            if self.rule.learns:
                deltas.append(self.rule.observe(codes, update))
        down, down_words = self._same_length(down)
        rows = self.collectives.gather([self.frame.wrap(d) for d in down])
        words, admitted, checks = self.frame.open(rows)
        with tf.control_dependencies(checks):
            update, valid = self.downlink.decode(words)
        dropped += tf.reduce_sum(tf.cast(~(admitted & valid), tf.int32))
        if deltas:
            self.rule.apply(self.collectives.sum(local, tf.add_n(deltas)))
        return HostResult(update, dropped, down_words)

    def _same_length(self, down):
        """Downlink messages padded to one length: fixed, or the longest
        of the step (its length gathered first)."""
        fixed = self.downlink.fixed_words
        if fixed is not None:
            return down, tf.constant(fixed, tf.int32)
        lengths = self.collectives.gather([tf.shape(d)[0:1] for d in down])
        longest = tf.reduce_max(lengths)
        return ([tf.pad(d, [[0, longest - tf.shape(d)[0]]]) for d in down],
                longest)
