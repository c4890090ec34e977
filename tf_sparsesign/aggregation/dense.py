"""The dense baseline (``dense=True``): the ordinary SUM all-reduce, with
the same counters as the sparse path, for A/B runs.

With gradient accumulation (``accumulation``) each replica accumulates its
micro-steps locally like the sparse path, but the all-reduce (a
``merge_call``, which cannot sit in a ``cond``) runs on every micro-step;
its result is used on the A-th only. Same math as one step on the
A-times-larger batch; A times the traffic (counted as it happens)."""

from __future__ import annotations

import tensorflow as tf

from .. import policy
from . import adversary_hook


class DenseAggregator:
    """All-reduces the gradients; counts a fp32 ring all-reduce's bytes.

    Attributes: ``layout``, ``state``, ``ks`` (all 0), ``adversary``,
    ``accumulation``, ``owner`` and ``routed_calls`` as
    :class:`.aggregator.Aggregator`'s.
    """

    def __init__(self, config, layout, state, accumulation=None):
        self.layout = layout
        self.state = state
        self.ks = [0] * len(layout.sizes)
        self.adversary = adversary_hook.bind(config.adversary, 0)
        self.accumulation = accumulation
        self.owner = None
        self.routed_calls = 0

    def extra_stats(self) -> dict:
        """Statistics beyond the counters: the dense step saves nothing."""
        return {"time_saved": 0.0}

    def aggregate(self, grads_and_vars, active=None):
        """The SUM all-reduce of the gradients (every micro-step, whatever
        ``active``)."""
        grads_and_vars = list(grads_and_vars)
        ctx = tf.distribute.get_replica_context()
        present = self.layout.present(grads_and_vars)
        grads = self.adversary.corrupt_gradients([g for _, _, g in present])
        reduced = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        n = sum(self.layout.sizes[index] for _, index, _ in present)
        ring = policy.dense_ring_bytes(n, self.state.num_replicas)
        self.state.count_step(4 * n, ring, ring, ring, 0)
        out = list(grads_and_vars)
        for (i, _, _), g in zip(present, reduced):
            out[i] = (g, grads_and_vars[i][1])
        return out
