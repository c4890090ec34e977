"""The hook an :class:`~.adversary.Adversary` binds to one aggregation:
what the hostile replicas send in each mode (see :mod:`.adversary`).

Every replica computes the hostile version and keeps it only when it is
one of the hostile replicas (``tf.where`` on the replica id), so all
replicas run the same collectives. State (a step counter, the delay
buffer of ``"stale"``: the codes and values selected ``delay`` steps
ago, which the codec writes into the same words it wrote then) lives in
sync-on-read variables: one value per replica, created when the
aggregation is built.
"""

from __future__ import annotations

import math

import tensorflow as tf

from .. import ops
_SELECTION_MODES = ("signflip", "random", "topflip", "collude", "lie",
                    "alternate", "stale")
#: Modes that read the replicas' error-accumulated gradients.
_DENSE_VIEW_MODES = ("topflip", "collude", "lie")


def _replica_variable(initial):
    return tf.Variable(initial, trainable=False,
                       synchronization=tf.VariableSynchronization.ON_READ,
                       aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


def _flip(codes, where):
    """Codes with the sign bit inverted where ``where`` (and live)."""
    return tf.where(where & (codes >= 0), tf.bitwise.bitwise_xor(codes, 1),
                    codes)


def _codes_with_signs(codes, negative):
    """Live codes re-signed: negative where ``negative``."""
    signed = tf.bitwise.bitwise_or(tf.bitwise.bitwise_and(codes, -2),
                                   tf.cast(negative, tf.int32))
    return tf.where(codes >= 0, signed, codes)


def _at(vector, codes):
    """``vector`` at the codes' indices, 0 in padding slots."""
    index = tf.maximum(codes // 2, 0)
    return tf.where(codes >= 0, tf.gather(vector, index), 0.0)


class HostileReplicas:
    """The bound hook (``Adversary.bind``); ``message_codes`` sizes the
    ``"stale"`` buffer."""

    def __init__(self, adversary, message_codes: int):
        self.adversary = adversary
        self.needs_dense = adversary.mode in _DENSE_VIEW_MODES
        self.step = _replica_variable(tf.zeros([], tf.int64))
        self.buffer = self.value_buffer = None
        if adversary.mode == "stale" and message_codes > 0:
            self.buffer = _replica_variable(
                tf.fill([adversary.delay, message_codes], -1))
            self.value_buffer = _replica_variable(
                tf.zeros([adversary.delay, message_codes], tf.float32))

    def bind(self, message_codes: int):
        return self

    # -- the hook ----------------------------------------------------------

    def corrupt_selection(self, codes, values, num_elements: int,
                          dense=None):
        if self.adversary.mode not in _SELECTION_MODES:
            return codes, values
        build = getattr(self, "_" + self.adversary.mode)
        bad_codes, bad_values = build(codes, values, dense)
        me = self._me()
        if values is not None:
            values = tf.where(me, bad_values, values)
        return tf.where(me, bad_codes, codes), values

    def corrupt_message(self, words, codec: str, num_elements: int):
        mode = self.adversary.mode
        bad = words
        if mode == "garbage":
            bad = _garbage(words, codec, num_elements)
        out = tf.where(self._me(), bad, words)
        with tf.control_dependencies([out]):
            self.step.assign_add(tf.constant(1, tf.int64))
        return tf.identity(out)

    def corrupt_gradients(self, grads):
        mode = self.adversary.mode
        if mode not in self.adversary.dense_modes:
            raise ValueError(f"Adversary mode {mode!r} has no dense form; "
                             "the dense baseline supports "
                             f"{self.adversary.dense_modes}")
        me = self._me()
        out = [tf.where(me, self._bad_gradient(g), g) for g in grads]
        with tf.control_dependencies(out):
            self.step.assign_add(tf.constant(1, tf.int64))
        return [tf.identity(g) for g in out]

    # -- modes on the selection ------------------------------------------

    def _signflip(self, codes, values, dense):
        return _flip(codes, True), None if values is None else -values

    def _random(self, codes, values, dense):
        bits = tf.random.stateless_uniform(
            tf.shape(codes), seed=self._seed(), minval=0, maxval=2,
            dtype=tf.int32)
        bad = _codes_with_signs(codes, bits > 0)
        if values is None:
            return bad, None
        return bad, tf.abs(values) * tf.cast(1 - 2 * bits, values.dtype)

    def _topflip(self, codes, values, dense):
        magnitude = tf.where(codes >= 0, tf.abs(_at(dense(), codes)), -1.0)
        count = max(1, math.ceil(self.adversary.fraction *
                                 int(codes.shape[0])))
        count = min(count, int(codes.shape[0]))
        threshold = tf.math.top_k(magnitude, count).values[-1]
        chosen = (codes >= 0) & (magnitude >= threshold)
        return _flip(codes, chosen), (None if values is None else
                                      tf.where(chosen, -values, values))

    def _collude(self, codes, values, dense):
        everyone = self._gather(dense)
        mean = tf.reduce_mean(
            tf.gather(everyone, list(self.adversary.replicas)), 0)
        shared = ops.sparse_sign_encode(mean, int(codes.shape[0]))
        return _flip(shared, True), (None if values is None else
                                     -_at(mean, shared))

    def _lie(self, codes, values, dense):
        everyone = self._gather(dense)
        mu = tf.reduce_mean(everyone, 0)
        sigma = tf.math.reduce_std(everyone, 0)
        z = self.adversary.z_for(_replica_context().num_replicas_in_sync)
        target = mu - z * sigma * tf.sign(mu)
        shared = ops.sparse_sign_encode(mu, int(codes.shape[0]))
        bad = _codes_with_signs(shared, _at(target, shared) < 0)
        return bad, None if values is None else _at(target, shared)

    def _alternate(self, codes, values, dense):
        flipping = (self._now() // self.adversary.period) % 2 == 1
        flipped, negated = self._signflip(codes, values, dense)
        return (tf.where(flipping, flipped, codes),
                None if values is None else tf.where(flipping, negated,
                                                     values))

    # -- helpers -------------------------------------------------------------

    def _stale(self, codes, values, dense):
        """The selection of ``delay`` steps ago (this step's at first);
        this step's is kept for later."""
        if self.buffer is None:
            return codes, values
        delay = self.adversary.delay
        now = self._now()
        slot = tf.cast(now % delay, tf.int32)
        late = now >= delay
        sent = tf.where(late, tf.gather(tf.convert_to_tensor(self.buffer),
                                        slot), codes)
        updates = [self.buffer.assign(tf.tensor_scatter_nd_update(
            tf.convert_to_tensor(self.buffer), [[slot]], codes[None]))]
        if values is not None:
            old = tf.gather(tf.convert_to_tensor(self.value_buffer), slot)
            values_sent = tf.where(late, old, values)
            updates.append(self.value_buffer.assign(
                tf.tensor_scatter_nd_update(
                    tf.convert_to_tensor(self.value_buffer), [[slot]],
                    values[None])))
            values = values_sent
        with tf.control_dependencies(updates):
            return tf.identity(sent), (None if values is None else
                                       tf.identity(values))

    def _bad_gradient(self, g):
        mode = self.adversary.mode
        if mode == "signflip":
            return -g
        if mode == "alternate":
            flipping = (self._now() // self.adversary.period) % 2 == 1
            return tf.where(flipping, -g, g)
        if mode == "random":
            bits = tf.random.stateless_uniform(
                tf.shape(g), seed=self._seed(), minval=0, maxval=2,
                dtype=tf.int32)
            return tf.abs(g) * tf.cast(2 * bits - 1, g.dtype)
        return tf.fill(tf.shape(g), tf.constant(float("nan"), g.dtype))

    def _gather(self, dense):
        """Every replica's dense error-accumulated gradient, ``[M, N]``."""
        return _replica_context().all_gather(dense()[None, :], axis=0)

    def _now(self):
        return tf.convert_to_tensor(self.step)

    def _seed(self):
        me = tf.cast(_replica_context().replica_id_in_sync_group, tf.int64)
        return tf.stack([tf.constant(self.adversary.seed, tf.int64) * 65536
                         + me, self._now()])

    def _me(self):
        me = tf.cast(_replica_context().replica_id_in_sync_group, tf.int32)
        hostile = tf.constant(self.adversary.replicas or (-1,), tf.int32)
        return tf.reduce_any(tf.equal(me, hostile))


def _garbage(words, codec: str, num_elements: int):
    """Malformed words: every int32 code out of range, every packed byte
    invalid (255), or a scrambled Rice stream."""
    if codec == "int32":
        return tf.fill(tf.shape(words), 2 * num_elements)
    if codec == "packed":  # bytes 255: no base-3 byte
        return tf.fill(tf.shape(words), -1)
    return tf.bitwise.bitwise_xor(words, 0x2545F491)


def _replica_context():
    ctx = tf.distribute.get_replica_context()
    if ctx is None:
        raise RuntimeError("Adversary: must run in replica context")
    return ctx
