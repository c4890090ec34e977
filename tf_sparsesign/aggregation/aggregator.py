"""One training step's aggregation: encode -> gather -> decode -> combine ->
split.

:class:`Aggregator` replaces the dense gradient all-reduce of an optimizer.
Per step, in replica context, on every replica:

1. **encode** — for each variable ``l``: ``e_l = memory_l + g_l`` (error
   feedback, :mod:`.memory`), the selector (:mod:`.select`) picks what to
   send (top-K signs: ``codes_l = sparse_sign_encode(e_l, K_l)``), codes
   are shifted into one global index space (:mod:`.layout`) and the codec
   (:mod:`.codec`) writes them as int32 words behind the settings
   fingerprint (:mod:`.framing`).
2. **gather** — **one** ``all_gather`` of every replica's message. Only now
   are the memories written (what was not sent), so a failed step changes
   nothing.
3. **decode** — settings check, then the codec turns the gathered rows back
   into codes; rows that cannot be used abstain (``on_invalid="drop"``).
4. **combine** — the vote rule (:mod:`.combine`) gives the update in the
   global space (ternary for the sign methods).
5. **split** — the update is cut into per-variable gradients, which the
   wrapped optimizer applies (SGD: ``x <- x - lr * vote``, exactly S3GD-MV).

The parts are chosen once by :func:`build_aggregator`; the step itself does
not branch on method, codec or vote names.
"""

from __future__ import annotations

import tensorflow as tf

from .. import policy
from ..config import SparseSignConfig
from ..constants import PAD_CODE
from . import memory as memory_lib
from . import registry
from . import adversary_hook
from .dense import DenseAggregator
from .framing import SettingsFrame
from .layout import Layout
from .state import AggregatorState


class Aggregator:
    """The sparse-sign step for one optimizer (built by
    :func:`build_aggregator`); ``state`` holds everything that persists."""

    def __init__(self, config: SparseSignConfig, layout: Layout,
                 state: AggregatorState, ks):
        self.config = config
        self.layout = layout
        self.state = state
        self.ks = list(ks)
        n, k = layout.total, sum(self.ks)
        with_values = registry.sends_values(config.method)
        self.memory = memory_lib.make(state.memories)
        self.selector = registry.load(registry.METHODS[config.method])(
            config.seed)
        self.codec = registry.load(registry.CODECS[config.wire])(
            n, k, with_values)
        rule = (registry.VALUES_COMBINER if with_values else
                registry.VOTES[config.vote])
        self.combiner = registry.load(rule)(state, state.num_replicas, n)
        self.frame = SettingsFrame(config, config.fingerprint(layout.sizes,
                                                              self.ks))
        self.adversary = adversary_hook.bind(config.adversary,
                                             self.codec.words)
        self.dense_bytes = policy.dense_ring_bytes(n, state.num_replicas)

    def aggregate(self, grads_and_vars):
        """Replaces the gradient all-reduce: returns (update, var) pairs.

        Must run in replica context (``strategy.run``, or Keras ``fit``).
        """
        grads_and_vars = list(grads_and_vars)
        ctx = _replica_context()
        present = self.layout.present(grads_and_vars)
        message, residuals = self.encode(present)                 # 1
        rows = ctx.all_gather(message[None, :], axis=0)           # 2
        self.memory.commit(residuals, after=rows)
        codes, values, dropped = self.decode(rows)                # 3
        update, malformed = self.combiner.combine(                # 4
            codes, values, self.config.on_invalid)
        self._count(message, rows, dropped + malformed)
        return self.layout.split(update, present, grads_and_vars)  # 5

    def encode(self, present):
        """This replica's message and the ``(slot, residual)`` pairs its
        memory keeps."""
        codes, values, residuals, sent_from = [], [], [], {}
        for _, slot, g in present:
            sent_from[slot] = self.memory.add(slot, g)
            chosen = self.selector.select(sent_from[slot], self.ks[slot],
                                          slot, self.memory.keeps_residual)
            codes.append(self.layout.to_global(chosen.codes, slot))
            values.append(chosen.values)
            residuals.append((slot, chosen.residual))
        codes, values = self.adversary.corrupt_selection(
            tf.concat(codes, 0), _concat_or_none(values), self.layout.total,
            adversary_hook.dense_view(self.layout.sizes, sent_from))
        words = self.adversary.corrupt_message(
            self.codec.encode(codes, values), self.codec.name,
            self.layout.total)
        return self.frame.wrap(words), residuals

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

    def _count(self, message, rows, dropped):
        """Counters from the actual tensors' sizes (ring all-gather: every
        other replica's message crosses this replica's link once); only
        after the step's messages exist, so a failed step counts nothing."""
        with tf.control_dependencies([rows, dropped]):
            own = tf.cast(tf.size(message), tf.int64) * 4
            others = tf.cast(tf.size(rows), tf.int64) * 4 - own
            self.state.count_step(own, others, others, self.dense_bytes,
                                  dropped)


def _concat_or_none(values):
    return None if values[0] is None else tf.concat(values, 0)


def _replica_context():
    ctx = tf.distribute.get_replica_context()
    if ctx is None:
        raise RuntimeError("tf_sparsesign: gradients must be aggregated in "
                           "replica context (inside strategy.run)")
    return ctx


def build_aggregator(config: SparseSignConfig, variables, num_replicas: int,
                     factory, var_key):
    """The aggregation for ``variables``: :class:`Aggregator`, or the dense
    baseline with ``config.dense``.

    Args:
      config: the settings.
      variables: the trainable variables, in the optimizer's order.
      num_replicas: replicas in sync (voters).
      factory: creates state variables (see :class:`AggregatorState`).
      var_key: maps a variable or replica component to a stable key.
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
    return Aggregator(config, layout, state, ks)
