"""One training step's aggregation: encode -> message -> gather -> decode ->
combine -> apply.

:class:`Aggregator` replaces the dense gradient all-reduce of an optimizer.
Per step:

1. **encode** (every replica) — the memory's step (:mod:`.memory`: error
   feedback around the selector, :mod:`.select`; top-K fused in place on
   the memory) selects per variable; codes are shifted into one global
   index space (:mod:`.layout`). No memory is written before every local
   replica's gradient was checked finite.
2. **message** (every replica) — the exchange (:mod:`.exchange`) writes
   this replica's message (codec words behind the settings fingerprint);
   codes it cannot carry go back to the memory.
3. **host step** (once per host) — the exchange brings every replica's
   messages together (all-gather, or all-to-all then the shard votes),
   decodes them (unusable rows abstain with ``on_invalid="drop"``) and the
   vote rule (:mod:`.combine`) gives the update at the touched coordinates
   only (at most M·K); the apply's host half runs there.
4. **apply** (:mod:`.apply`) — per-variable gradients straight from the
   sparse update for the wrapped optimizer, or, for plain SGD, the touched
   coordinates updated directly (``x -= lr * vote``: exactly S3GD-MV).

The parts are built once by :func:`.build.build_aggregator`, each satisfying
its Protocol in :mod:`.interfaces`; the step itself does not branch on
method, codec, vote or exchange names, nor on settings. Each part can be
called alone (``memory.begin()``, ``exchange.message``,
``exchange.host_step``, ``apply``): :mod:`.timing` runs the real parts at
a model's sizes without a network, for the calibration and the benchmarks.
"""

from __future__ import annotations

import tensorflow as tf

from . import adversary_hook
from .interfaces import HostResult, SparseUpdate


class Aggregator:
    """The sparse-sign step for one optimizer (built by
    :func:`.build.build_aggregator`).

    Attributes:
      layout: the variables laid end to end (:class:`.layout.Layout`).
      state: everything that persists (:class:`.state.AggregatorState`).
      ks: entries each variable sends per step.
      memory: the :class:`~.interfaces.Memory` (error feedback, or none).
      exchange: the :class:`~.interfaces.Exchange`.
      apply: the :class:`~.interfaces.Apply`.
      adversary: the :class:`~.interfaces.Adversary` hook (honest).
      dense_bytes: what a dense fp32 ring all-reduce sends per replica and
        step, for the counters.
      accumulation: the :class:`.accumulation.Accumulation` when the
        optimizer accumulates gradients over micro-steps, else None.
      owner: the optimizer that tracks and saves :attr:`state` (set by the
        integration when it attaches the aggregator).
      routed_calls: how many times Keras routed an aggregation here (the
        integration's guard that no step bypassed the vote).
    """

    def __init__(self, layout, state, ks, memory, exchange, apply,
                 adversary, dense_bytes: int, accumulation=None,
                 option: str = "", time_saved: float = 0.0):
        self.layout = layout
        self.state = state
        self.ks = list(ks)
        self.memory = memory
        self.exchange = exchange
        self.apply = apply
        self.adversary = adversary
        self.dense_bytes = int(dense_bytes)
        self.accumulation = accumulation
        #: The option chosen when built (``"allgather/int32"``, ...).
        self.option = option
        #: Seconds per step the time model predicts this option saves
        #: against the dense all-reduce (the ``comm_time_saved`` KPI).
        self.time_saved = float(time_saved)
        self.owner = None
        self.routed_calls = 0

    def extra_stats(self) -> dict:
        """Statistics beyond the counters: what ``auto`` decided at run
        time (:meth:`~.interfaces.Exchange.stats`)."""
        return {"exchange": self.option, "time_saved": self.time_saved,
                **self.exchange.stats()}

    def aggregate(self, grads_and_vars, active=None):
        """Replaces the gradient all-reduce: returns the (gradient, variable)
        pairs the wrapped optimizer still has to apply.

        Must run in replica context (``strategy.run``, or Keras ``fit``).
        ``active`` (a bool tensor, the same on every replica): with
        gradient accumulation, whether this micro-step sends; on the others
        nothing is encoded, exchanged, applied or counted, and the
        gradients returned are zero (the caller skips the optimizer's
        update there too).
        """
        grads_and_vars = list(grads_and_vars)
        ctx = _replica_context()
        present = self.layout.present(grads_and_vars)
        checked = ctx.merge_call(_all_local, args=(
            [g for _, _, g in present],))
        with tf.control_dependencies([checked]):
            if active is None:
                step = self.memory.begin()
                codes, values = self.encode(step, present)          # 1
                message = self.exchange.message(codes, values)      # 2
                words, kept = message
            else:  # no merge_call inside a cond: send, or send nothing
                words, overflow = tf.cond(
                    active, lambda: self._send_now(present),
                    lambda: (tf.zeros(self.exchange.message_shape, tf.int32),
                             tf.zeros([], tf.int64)))
        if active is None:
            overflow = step.give_back(kept)
        result = ctx.merge_call(                                     # 3
            lambda strategy, words, active: self._host(
                strategy.experimental_local_results(words), present,
                None if active is None else
                strategy.experimental_local_results(active)[0]),
            args=(words, active))
        if active is None:
            step.commit(after=result.update.indices)
            self._count(words, result, overflow)
        else:
            tf.cond(active, lambda: self._count(words, result, overflow),
                    lambda: None)
        return self.apply.gradients(result.update, present,          # 4
                                    grads_and_vars)

    def _send_now(self, present):
        """Steps 1-2 of a micro-step that sends, with the memory written at
        once (a cond's branch keeps its tensors): ``(words, overflow)``."""
        step = self.memory.begin()
        codes, values = self.encode(step, present)
        message = self.exchange.message(codes, values)
        overflow = step.give_back(message.kept)
        step.commit(after=message.words)
        return message.words, overflow

    def _host(self, local, present, active):
        """The host step, or (``active`` False) an empty update."""
        if active is None:
            return self.host_step(local, present)

        def now():
            r = self.host_step(local, present)
            return r.update.indices, r.update.values, r.dropped, r.down_words

        def nothing():
            return (tf.zeros([0], tf.int32), tf.zeros([0], tf.float32),
                    tf.zeros([], tf.int32), tf.zeros([], tf.int32))

        indices, values, dropped, down = tf.cond(active, now, nothing)
        return HostResult(SparseUpdate(indices, values), dropped, down)

    def encode(self, step, present):
        """``(codes, values)`` this replica sends: every present variable's
        selection by the memory ``step``, in the global index space, after
        the adversary hook (values: None unless the selector keeps them)."""
        dense = None
        if self.adversary.needs_dense:  # read before a fused select clears
            pieces = {index: step.accumulated(index, g)
                      for _, index, g in present}
            dense = adversary_hook.dense_view(self.layout.sizes, pieces)
        chosen = [(index, step.select(index, g)) for _, index, g in present]
        codes = tf.concat([self.layout.to_global(c.codes, index)
                           for index, c in chosen], 0)
        values = ([tf.cast(c.values, tf.float32) for _, c in chosen]
                  if chosen and chosen[0][1].values is not None else None)
        return self.adversary.corrupt_selection(
            codes, None if values is None else tf.concat(values, 0),
            self.layout.total, dense)

    def host_step(self, local: list, present: list):
        """Once per host, in cross-replica context: the exchange (gather,
        decode, combine) of this host's messages ``local``, then the
        apply's host half. Returns the exchange's
        :class:`~.interfaces.HostResult`."""
        result = self.exchange.host_step(list(local))
        self.apply.host_step(result.update, present)
        return result

    def _count(self, words, result, overflow):
        """Counters from the actual messages' sizes; only after the step's
        update exists, so a failed step counts nothing."""
        own, sent, received = self.exchange.wire(words, result.down_words)
        with tf.control_dependencies([result.update.indices,
                                      result.dropped]):
            self.state.count_step(own, sent, received, self.dense_bytes,
                                  result.dropped, overflow=overflow)


def _all_local(strategy, grads):
    """A no-op after every local replica's gradients (so after their
    finiteness checks)."""
    return tf.group([t for g in grads
                     for t in strategy.experimental_local_results(g)])


def _replica_context():
    ctx = tf.distribute.get_replica_context()
    if ctx is None:
        raise RuntimeError("tf_sparsesign: gradients must be aggregated in "
                           "replica context (inside strategy.run)")
    return ctx
