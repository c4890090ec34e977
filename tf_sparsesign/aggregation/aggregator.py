"""One training step's aggregation: encode -> gather -> decode -> combine ->
apply.

:class:`Aggregator` replaces the dense gradient all-reduce of an optimizer.
Per step:

1. **encode** (every replica) — for each variable: error feedback and the
   selector's choice (:mod:`.memory`, :mod:`.select`; top-K signs fused in
   place on the memory), codes shifted into one global index space
   (:mod:`.layout`), written as int32 words by the codec (:mod:`.codec`)
   behind the settings fingerprint (:mod:`.framing`). No memory is written
   before every local replica's gradient was checked finite.
2. **gather** (once per host) — every replica's message as rows: stacked on
   one host, one static-shape collective across workers (:mod:`.gather`).
3. **decode** — settings check, words back to codes; unusable rows abstain
   (``on_invalid="drop"``).
4. **combine** — the vote rule (:mod:`.combine`) gives the update at the
   touched coordinates only (at most M·K): computed once per host, for all
   its replicas.
5. **apply** (:mod:`.apply`) — per-variable gradients straight from the
   sparse update for the wrapped optimizer, or, for plain SGD, the touched
   coordinates updated directly (``x -= lr * vote``: exactly S3GD-MV).

The parts are chosen once by :func:`build_aggregator`; the step itself does
not branch on method, codec or vote names.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from .. import policy
from ..config import SparseSignConfig
from ..constants import PAD_CODE
from . import memory as memory_lib
from . import registry
from .adversary_hook import HONEST
from .apply import DenseGradients, SparseSGD
from .dense import DenseAggregator
from .framing import SettingsFrame
from .gather import gather_rows
from .layout import Layout
from .state import AggregatorState


class Aggregator:
    """The sparse-sign step for one optimizer (built by
    :func:`build_aggregator`); ``state`` holds everything that persists."""

    def __init__(self, config: SparseSignConfig, layout: Layout,
                 state: AggregatorState, ks, apply, collective: Callable):
        self.config = config
        self.layout = layout
        self.state = state
        self.ks = list(ks)
        n, k = layout.total, sum(self.ks)
        with_values = registry.sends_values(config.method)
        self.selector = registry.load(registry.METHODS[config.method])(
            config.seed)
        self.memory = memory_lib.make(state.memories, self.selector)
        self.codec = registry.load(registry.CODECS[config.wire])(
            n, k, with_values)
        rule = (registry.VALUES_COMBINER if with_values else
                registry.VOTES[config.vote])
        self.combiner = registry.load(rule)(state, state.num_replicas, n)
        self.apply = apply
        self.collective = collective
        self.frame = SettingsFrame(config, config.fingerprint(layout.sizes,
                                                              self.ks))
        self.adversary = config.adversary or HONEST
        self.dense_bytes = policy.dense_ring_bytes(n, state.num_replicas)

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
            message, pending = self.encode(present)                  # 1
        slots = [(i, slot) for i, slot, _ in present]  # same everywhere
        update, dropped = ctx.merge_call(                             # 2-4
            lambda strategy, message: self._host_step(strategy, message,
                                                      slots),
            args=(message,))
        self.memory.commit(pending, after=update.indices)
        self._count(message, update, dropped)
        return self.apply.gradients(self.layout, update, slots,      # 5
                                    grads_and_vars)

    def encode(self, present):
        """This replica's message and the residuals its memory keeps."""
        codes, values, pending = [], [], []
        for _, slot, g in present:
            chosen, residual = self.memory.select(
                self.selector, slot, g, self.ks[slot],
                _label(self.layout.variable(slot)))
            codes.append(self.layout.to_global(chosen.codes, slot))
            values.append(chosen.values)
            if residual is not None:
                pending.append(residual)
        codes, values = self.adversary.corrupt_selection(
            tf.concat(codes, 0), _concat_or_none(values), self.layout.total)
        words = self.adversary.corrupt_message(
            self.codec.encode(codes, values), self.codec.name,
            self.layout.total)
        return self.frame.wrap(words), pending

    def _host_step(self, strategy, message, slots):
        """Once per host, in cross-replica context: gather, decode,
        combine, and the host's part of apply."""
        rows = gather_rows(strategy, message, self.collective)      # 2
        codes, values, dropped = self.decode(rows)                  # 3
        update, malformed = self.combiner.combine(                  # 4
            codes, values, self.config.on_invalid)
        self.apply.host_step(strategy, self.layout, update, slots)
        return update, dropped + malformed

    def decode(self, rows):
        """``(codes, values, dropped)``: rows with a foreign fingerprint or
        an undecodable message become all padding (they abstain)."""
        words, admitted, checks = self.frame.open(rows)
        with tf.control_dependencies(checks):
            decoded = self.codec.decode(words, self.config.on_invalid)
        usable = admitted & decoded.valid
        codes = tf.where(usable[:, None], decoded.codes, PAD_CODE)
        dropped = tf.reduce_sum(tf.cast(~usable, tf.int32))
        return codes, decoded.values, dropped

    def _count(self, message, update, dropped):
        """Counters from the actual message size (ring all-gather: every
        other replica's message crosses this replica's link once); only
        after the step's update exists, so a failed step counts nothing."""
        own = 4 * int(message.shape[0])
        others = own * (self.state.num_replicas - 1)
        with tf.control_dependencies([update.indices, dropped]):
            self.state.count_step(own, others, others, self.dense_bytes,
                                  dropped)


def _all_local(strategy, grads):
    """A no-op after every local replica's gradients (so after their
    finiteness checks)."""
    return tf.group([t for g in grads
                     for t in strategy.experimental_local_results(g)])


def _label(variable) -> str:
    return getattr(variable, "path", None) or getattr(variable, "name", "")


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
                     collective: Callable | None = None):
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
      collective: ``(strategy, local_rows) -> rows``, the all-gather across
        workers (see :mod:`.gather`).
    """
    layout = Layout(variables, var_key)
    if config.dense:
        state = AggregatorState(factory, variables, num_replicas, False)
        return DenseAggregator(config, layout, state)
    layout.check_index_space()
    ks = policy.allocate(layout.sizes, config.density, config.k,
                         num_replicas)
    policy.warn_if_wasteful(layout.sizes, ks)
    state = AggregatorState(factory, variables, num_replicas,
                            config.error_feedback)
    apply = (SparseSGD(learning_rate) if learning_rate is not None else
             DenseGradients())
    return Aggregator(config, layout, state, ks, apply, collective)
