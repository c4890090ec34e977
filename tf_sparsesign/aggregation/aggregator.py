"""One training step's aggregation: encode -> gather -> decode -> combine ->
apply.

:class:`Aggregator` replaces the dense gradient all-reduce of an optimizer.
Per step:

1. **encode** (every replica) — for each variable: error feedback and the
   selector's choice (:mod:`.memory`, :mod:`.select`; top-K fused in place
   on the memory), codes shifted into one global index space
   (:mod:`.layout`). No memory is written before every local replica's
   gradient was checked finite.
2. **gather** (once per host) — the exchange (:mod:`.exchange`) writes this
   replica's message (codec words behind the settings fingerprint) and
   brings every replica's messages together: all-gather (everyone gets
   everything) or sharded (all-to-all of buckets, then the shard votes).
3. **decode** — settings check, words back to codes; unusable rows abstain
   (``on_invalid="drop"``).
4. **combine** — the vote rule (:mod:`.combine`) gives the update at the
   touched coordinates only (at most M·K), once per host (or shard).
5. **apply** (:mod:`.apply`) — per-variable gradients straight from the
   sparse update for the wrapped optimizer, or, for plain SGD, the touched
   coordinates updated directly (``x -= lr * vote``: exactly S3GD-MV).

The parts are chosen once by :func:`build_aggregator`; the step itself does
not branch on method, codec, vote or exchange names.
"""

from __future__ import annotations

import tensorflow as tf

from .. import policy
from ..config import SparseSignConfig
from . import memory as memory_lib
from . import registry
from . import adversary_hook
from .apply import DenseGradients, SparseSGD
from .dense import DenseAggregator
from .exchange.collectives import HostCollectives
from .framing import SettingsFrame
from .layout import Layout
from .state import AggregatorState


class Aggregator:
    """The sparse-sign step for one optimizer (built by
    :func:`build_aggregator`); ``state`` holds everything that persists."""

    def __init__(self, config: SparseSignConfig, layout: Layout,
                 state: AggregatorState, ks, parts: registry.Parts, apply,
                 collectives: HostCollectives):
        self.config = config
        self.layout = layout
        self.state = state
        self.ks = list(ks)
        self.want_values = (registry.sends_values(config.method) or
                            parts.exchange != "allgather")
        self.selector = registry.load(parts.select)(config.seed)
        self.memory = memory_lib.make(state.memories, self.selector)
        combiner = registry.load(parts.combine)(state, state.num_replicas)
        frame = SettingsFrame(config, config.fingerprint(layout.sizes,
                                                         self.ks))
        self.exchange = registry.load(registry.EXCHANGES[parts.exchange])(
            config, layout, state, self.ks, parts, combiner, frame,
            collectives)
        self.combiner = combiner
        self.apply = apply
        self.adversary = adversary_hook.bind(config.adversary, sum(self.ks))
        self.dense_bytes = policy.dense_ring_bytes(layout.total,
                                                   state.num_replicas)

    def aggregate(self, grads_and_vars):
        """Replaces the gradient all-reduce: returns the (gradient, variable)
        pairs the wrapped optimizer still has to apply.

        Must run in replica context (``strategy.run``, or Keras ``fit``).
        """
        grads_and_vars = list(grads_and_vars)
        ctx = _replica_context()
        present = self.layout.present(grads_and_vars)
        checked = ctx.merge_call(_all_local, args=(
            [g for _, _, g in present],))
        with tf.control_dependencies([checked]):
            chosen, pending = self.encode(present)                   # 1
            message, kept = self.exchange.message(                   # 2
                tf.concat([c.codes for c in chosen], 0),
                _concat_or_none([_float32(c.values) for c in chosen]),
                self.adversary)
        overflow = self._give_back(present, chosen, kept, pending)
        slots = [(i, slot) for i, slot, _ in present]  # same everywhere
        update, dropped, down_words = ctx.merge_call(              # 2-4
            lambda strategy, message: self._host_step(strategy, message,
                                                      slots),
            args=(message,))
        self.memory.commit(pending, after=update.indices)
        self._count(message, down_words, update, dropped, overflow)
        return self.apply.gradients(self.layout, update, slots,      # 5
                                    grads_and_vars)

    def encode(self, present):
        """Per variable, what this replica selected (codes in the global
        space, after the adversary hook), and the residuals to write."""
        chosen, pending, accumulated = [], {}, {}
        needs_dense = getattr(self.adversary, "needs_dense", False)
        for _, slot, g in present:
            if needs_dense:  # read before a fused encode clears it
                accumulated[slot] = self.memory.accumulated(slot, g)
            selection, residual = self.memory.select(
                self.selector, slot, g, self.ks[slot],
                _label(self.layout.variable(slot)), self.want_values)
            chosen.append(selection._replace(
                codes=self.layout.to_global(selection.codes, slot)))
            if residual is not None:
                pending[slot] = residual[1]
        codes, values = self.adversary.corrupt_selection(
            tf.concat([c.codes for c in chosen], 0),
            _concat_or_none([_float32(c.values) for c in chosen]) if
            registry.sends_values(self.config.method) else None,
            self.layout.total, adversary_hook.dense_view(
                self.layout.sizes, accumulated) if needs_dense else None)
        return _split_like(chosen, codes, values), pending

    def _host_step(self, strategy, message, slots):
        """Once per host, in cross-replica context: the exchange (gather,
        decode, combine), then the host's part of apply."""
        update, dropped, down_words = self.exchange.host_step(strategy,
                                                              message)
        self.apply.host_step(strategy, self.layout, update, slots)
        return update, dropped, down_words

    def _give_back(self, present, chosen, kept, pending):
        """Selected codes the exchange could not carry go back into the
        error-feedback memory; returns how many (0 when all were sent)."""
        if kept is None:
            return tf.zeros([], tf.int64)
        start = 0
        for (_, slot, _), c in zip(present, chosen):
            k = self.ks[slot]
            lost = ~kept[start:start + k] & (c.codes >= 0)
            start += k
            local = tf.boolean_mask(c.codes, lost) // 2 - \
                self.layout.offsets[slot]
            self.memory.give_back(slot, local, tf.boolean_mask(c.values,
                                                               lost),
                                  pending)
        codes = tf.concat([c.codes for c in chosen], 0)
        return tf.reduce_sum(tf.cast(~kept & (codes >= 0), tf.int64))

    def _count(self, message, down_words, update, dropped, overflow):
        """Counters from the actual messages' sizes; only after the step's
        update exists, so a failed step counts nothing."""
        own, sent, received = self.exchange.wire(message, down_words)
        with tf.control_dependencies([update.indices, dropped]):
            self.state.count_step(own, sent, received, self.dense_bytes,
                                  dropped, overflow=overflow)


def _all_local(strategy, grads):
    """A no-op after every local replica's gradients (so after their
    finiteness checks)."""
    return tf.group([t for g in grads
                     for t in strategy.experimental_local_results(g)])


def _label(variable) -> str:
    return getattr(variable, "path", None) or getattr(variable, "name", "")


def _float32(values):
    return None if values is None else tf.cast(values, tf.float32)


def _split_like(chosen, codes, values):
    """``chosen`` with the (possibly corrupted) concatenated codes and
    values cut back per variable."""
    sizes = [int(c.codes.shape[0]) for c in chosen]
    codes = tf.split(codes, sizes) if chosen else []
    values = (tf.split(values, sizes) if values is not None else
              [c.values for c in chosen])
    return [c._replace(codes=cc, values=v if v is not None else c.values)
            for c, cc, v in zip(chosen, codes, values)]


def _concat_or_none(values):
    return None if values[0] is None else tf.concat(values, 0)


def _replica_context():
    ctx = tf.distribute.get_replica_context()
    if ctx is None:
        raise RuntimeError("tf_sparsesign: gradients must be aggregated in "
                           "replica context (inside strategy.run)")
    return ctx


def build_aggregator(config: SparseSignConfig, variables, num_replicas: int,
                     factory, var_key, learning_rate=None,
                     collectives=None, local_replicas: int | None = None):
    """The aggregation for ``variables``: :class:`Aggregator`, or the dense
    baseline with ``config.dense``.

    Args:
      config: the settings.
      variables: the trainable variables, in the optimizer's order.
      num_replicas: replicas in sync (voters).
      factory: creates state variables (see :class:`AggregatorState`).
      var_key: maps a variable or replica component to a stable key.
      learning_rate: for optimizers where a zero gradient changes nothing
        (plain SGD), a callable returning the current learning rate: the
        touched coordinates are then updated directly (:mod:`.apply`).
        None: per-variable gradients for the wrapped optimizer.
      collectives: how to launch collectives across workers
        (``all_gather``, ``all_to_all``, ``all_reduce``, ``replica_ids``;
        see :mod:`.exchange.collectives`).
      local_replicas: replicas on this host (default: all); with
        ``aggregation="auto"`` a job on one host all-gathers (nothing
        crosses a wire), several hosts take the cheaper exchange.
    """
    layout = Layout(variables, var_key)
    if config.dense:
        state = AggregatorState(factory, variables, num_replicas, False)
        return DenseAggregator(config, layout, state)
    layout.check_index_space()
    ks = policy.allocate(layout.sizes, config.density, config.k,
                         num_replicas)
    # Chosen once here (signSGD-MV runs as packed signs; "auto" picks the
    # exchange by the byte model); the step never branches on names.
    parts = registry.choose(config, policy.sends_everything(layout.sizes, ks),
                            layout.total, sum(ks), num_replicas,
                            local_replicas)
    policy.warn_if_wasteful(layout.sizes, ks, parts.wire,
                            registry.sends_values(config.method))
    state = AggregatorState(factory, variables, num_replicas,
                            config.error_feedback)
    apply = (SparseSGD(learning_rate) if learning_rate is not None else
             DenseGradients())
    return Aggregator(config, layout, state, ks, parts, apply,
                      HostCollectives(collectives))
