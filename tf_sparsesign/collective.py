"""One training step's data path: encode -> gather -> vote -> (apply).

:class:`SignVoteAggregator` replaces the dense gradient all-reduce of a Keras
optimizer (``_all_reduce_sum_gradients``, the one place Keras 3 aggregates
gradients). Per step, in replica context, on every replica:

1. **encode** — for each variable ``l``: ``e_l = memory_l + g_l`` (error
   feedback; without it ``e_l = g_l``), ``codes_l = sparse_sign_encode(e_l,
   K_l)``; the selected entries of ``e_l`` are cleared and the rest is kept
   as the new memory.
2. **gather** — all variables' codes are shifted into one global index space
   and sent as one int32 message (a settings fingerprint first, then the
   codes) with **one** ``all_gather`` over all replicas.
3. **vote** — ``majority_vote`` over the gathered rows gives a ternary tensor
   in the global space, split back per variable.
4. **apply** — the wrapped optimizer applies the voted tensor as the gradient
   (SGD: ``x <- x - lr * vote``, exactly S3GD-MV).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import zlib
from typing import Any, Sequence

import tensorflow as tf

from . import ops, policy, wire

#: int32: wire format v1 (a code per entry); rice: Rice-coded gaps + signs
#: (docs/WIRE.md), padded to a fixed worst-case size for the all-gather.
WIRE_FORMATS = ("int32", "rice")
ON_INVALID = ("raise", "drop")
#: sign_vote: S3GD-MV (top-K signs, majority vote). Baselines for A/B runs:
#: topk_values: top-K SGD with error feedback sending values (the mean of
#: what was sent is applied); random_k: K random coordinates' signs, voted.
METHODS = ("sign_vote", "topk_values", "random_k")
#: plain: one vote per replica. weighted: signSGD-FV (Park & Lee, ISIT
#: 2024), each replica's vote weighted by how reliably it agreed before.
VOTES = ("plain", "weighted")
#: Bounds of the reliability weight 1 + log((agree + 1) / (disagree + 1)).
WEIGHT_MAX = 5.0


@dataclasses.dataclass(frozen=True)
class VoteConfig:
    """Settings of the sparse-sign vote (validated on construction).

    Attributes:
      density: fraction of each tensor sent, in (0, 1], or ``"auto"``.
      k: total entries per step spread over tensors by size (overrides
        density).
      error_feedback: keep what was not sent and add it to the next step.
      dense: baseline mode: plain dense all-reduce, no compression.
      on_invalid: ``"raise"`` or ``"drop"`` for malformed messages.
      wire: message format; ``"int32"`` (wire format v1).
      method: ``"sign_vote"`` (S3GD-MV) or a baseline, see ``METHODS``.
      seed: seed of ``random_k``'s coordinate choice.
      vote: ``"plain"`` or ``"weighted"`` (signSGD-FV), see ``VOTES``.
      adversary: test/experiment hook (:mod:`tf_sparsesign.adversary`);
        not part of the settings fingerprint nor of saved configs.
    """

    density: policy.Density = 0.01
    k: int | None = None
    error_feedback: bool = True
    dense: bool = False
    on_invalid: str = "raise"
    wire: str = "int32"
    method: str = "sign_vote"
    seed: int = 0
    vote: str = "plain"
    adversary: Any = None

    def __post_init__(self):
        if not self.dense:
            policy.validate(self.density, self.k)
        if self.on_invalid not in ON_INVALID:
            raise ValueError(f"on_invalid must be one of {ON_INVALID}, got "
                             f"{self.on_invalid!r}")
        if self.vote not in VOTES:
            raise ValueError(f"vote must be one of {VOTES}, got "
                             f"{self.vote!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got "
                             f"{self.method!r}")
        if self.wire == "rice" and self.method == "topk_values":
            raise ValueError("wire='rice' codes positions and signs; it "
                             "cannot carry method='topk_values' (values)")
        if self.wire not in WIRE_FORMATS:
            raise ValueError(f"wire must be one of {WIRE_FORMATS}, got "
                             f"{self.wire!r}")

    def to_dict(self) -> dict:
        """The settings (without the experiment-only adversary)."""
        out = dataclasses.asdict(self)
        out.pop("adversary")
        return out

    def fingerprint(self, sizes: Sequence[int], ks: Sequence[int]) -> int:
        """A non-negative int32 every worker must agree on."""
        text = json.dumps([self.to_dict(), list(sizes), list(ks)],
                          sort_keys=True)
        return zlib.crc32(text.encode()) & 0x7FFFFFFF


def _flat_size(variable) -> int:
    shape = tf.TensorShape(variable.shape)
    if not shape.is_fully_defined():
        raise ValueError(f"tf_sparsesign needs fully defined variable shapes,"
                         f" got {shape} for {variable.name}")
    return int(shape.num_elements())


class SignVoteAggregator:
    """Holds the per-step state (memories, counters) of one optimizer.

    Created by the owning optimizer's ``build``. Counters are tracked as
    ordinary optimizer variables; the per-replica memories are saved by
    :mod:`tf_sparsesign.state` (every replica its own value). Not a
    trackable itself on purpose.
    """

    def __init__(self, owner, variables: Sequence, config: VoteConfig,
                 num_replicas: int):
        self.owner = owner  # saves the memories (see state.py)
        self.config = config
        self.num_replicas = int(num_replicas)
        self.sizes = [_flat_size(v) for v in variables]
        self.total_size = sum(self.sizes)
        # Where each variable starts in the step's global index space.
        self.offsets = [0, *itertools.accumulate(self.sizes)][:-1]
        self._var_key = owner._var_key
        self._index = {self._var_key(v): i for i, v in enumerate(variables)}
        self.memories = []
        self.ks = [0] * len(variables)
        with _creation_scope(owner):
            self._create_state(owner, variables, config)

    def _create_state(self, owner, variables, config):
        if config.dense:
            self.fingerprint = 0
        else:
            if self.total_size >= ops.MAX_ELEMENTS:
                raise ValueError(
                    f"tf_sparsesign: the trainable variables have "
                    f"{self.total_size} elements; one step's global index "
                    f"space must stay below 2**30 = {ops.MAX_ELEMENTS}.")
            self.ks = policy.allocate(self.sizes, config.density, config.k,
                                      self.num_replicas)
            policy.warn_if_wasteful(self.sizes, self.ks)
            self.fingerprint = config.fingerprint(self.sizes, self.ks)
            # Fixed worst-case size: every replica's message has one shape
            # (about 5% above a typical Rice message, see docs/WIRE.md).
            self.rice_words = wire.rice_max_words(self.total_size,
                                                  sum(self.ks))
            if config.error_feedback:
                for v in variables:
                    self.memories.append(_add_replica_local(
                        owner, v, "sparsesign_memory"))
        from .state import ReplicaMemoryCheckpoint

        # Tracked by the owner: tf.train.Checkpoint saves every replica's.
        owner.sparsesign_state = ReplicaMemoryCheckpoint(self)
        # Communication counters (per replica; identical on every replica
        # for int32 messages). int64 bytes.
        self.counters = {
            name: _add_counter(owner, f"sparsesign_{name}")
            for name in ("steps", "message_bytes", "bytes_sent",
                         "bytes_received", "dense_bytes", "dropped_rows")}
        # signSGD-FV: per-row agreement counts (identical on every replica,
        # since every replica computes them from the same gathered rows).
        self.agree = self.disagree = None
        if config.vote == "weighted" and not config.dense:
            self.agree = _add_counter(owner, "sparsesign_agree",
                                      shape=(self.num_replicas,),
                                      dtype="float32")
            self.disagree = _add_counter(owner, "sparsesign_disagree",
                                         shape=(self.num_replicas,),
                                         dtype="float32")

    # -- the data path ---------------------------------------------------

    def aggregate(self, grads_and_vars):
        """Replaces ``_all_reduce_sum_gradients``: returns (vote, var) pairs.

        Must run in replica context (``strategy.run``, or Keras ``fit``).
        """
        grads_and_vars = list(grads_and_vars)
        ctx = tf.distribute.get_replica_context()
        if ctx is None:
            raise RuntimeError("tf_sparsesign: gradients must be aggregated "
                               "in replica context (inside strategy.run)")
        if self.config.dense:
            return self._dense(ctx, grads_and_vars)
        present = [(i, g, v) for i, (g, v) in enumerate(grads_and_vars)
                   if g is not None]
        slots = [self._slot(v) for _, _, v in present]
        grads = [g for _, g, _ in present]

        message, remainders = self.encode(grads, slots)           # 1. encode
        gathered = ctx.all_gather(message[None, :], axis=0)       # 2. gather
        self._keep_remainders(remainders, gathered)
        votes, dropped = self.vote(gathered)                      # 3. vote
        voted = self.split(votes, slots, [v for _, _, v in present])

        self._count(message, gathered, dropped)
        out = [(None, v) for _, v in grads_and_vars]
        for (i, _, v), g in zip(present, voted):
            out[i] = (g, v)
        return out                                                # 4. apply

    def _keep_remainders(self, remainders, gathered):
        """Error feedback: what was not sent becomes the memory — only once
        every replica's message arrived, so a step that fails anywhere (a
        NaN on one replica, a dead peer) leaves every memory untouched."""
        with tf.control_dependencies([gathered]):
            for memory, residual in remainders:
                memory.assign(tf.cast(residual, memory.dtype))

    def encode(self, grads, slots):
        """Per-variable top-K sign codes as one message in the global space;
        also returns the (memory, remainder) pairs for error feedback.

        Layout: ``[fingerprint, codes of variable 0, codes of variable 1,
        ...]``; each variable's codes are shifted by twice its offset (the
        code is ``index << 1 | sign``), padding stays ``-1``.
        """
        parts = [tf.constant([self.fingerprint], tf.int32)]
        values, remainders = [], []
        for g, slot in zip(grads, slots):
            g = tf.convert_to_tensor(g)  # IndexedSlices become dense
            e = g
            if self.config.error_feedback:
                memory = self.memories[slot]
                e = tf.cast(memory.value, g.dtype) + g
            codes, residual = self._select(e, slot)
            if self.config.error_feedback:
                remainders.append((memory, residual))
            if self.config.method == "topk_values":
                index = tf.maximum(codes, 0) // 2
                sent = tf.gather(tf.reshape(tf.cast(e, tf.float32), [-1]),
                                 index)
                values.append(tf.where(codes >= 0, sent, 0.0))
            shift = 2 * self.offsets[slot]
            parts.append(tf.where(codes >= 0, codes + shift, codes))
        adversary = self.config.adversary
        if adversary is not None and not (self.config.wire == "rice" and
                                          adversary.mode == "garbage"):
            parts[1:] = [adversary.corrupt_codes(tf.concat(parts[1:], 0),
                                                 self.total_size)]
            values = [adversary.corrupt_values(v) for v in values]
        if values:  # float32 values ride in the same int32 message
            parts.append(tf.bitcast(tf.concat(values, 0), tf.int32))
        if self.config.wire == "rice":
            words = wire.rice_encode(tf.concat(parts[1:], 0), self.total_size,
                                     pad_to=self.rice_words)
            if adversary is not None:
                words = adversary.corrupt_words(words)
            parts[1:] = [words]
        return tf.concat(parts, axis=0), remainders

    def _select(self, e, slot):
        """(codes, residual) of one variable for the configured method."""
        k = self.ks[slot]
        if self.config.method != "random_k":
            if self.config.error_feedback:
                return ops.sparse_sign_encode(e, k, return_residual=True)
            return ops.sparse_sign_encode(e, k), None
        flat = tf.reshape(e, [-1])
        chosen = tf.sort(tf.random.shuffle(
            tf.range(self.sizes[slot]), seed=self.config.seed + slot)[:k])
        picked = tf.gather(flat, chosen)
        codes = tf.where(tf.not_equal(picked, 0),
                         chosen * 2 + tf.cast(picked < 0, tf.int32),
                         ops.PAD_CODE)
        residual = tf.reshape(tf.tensor_scatter_nd_update(
            flat, chosen[:, None], tf.zeros_like(picked)), tf.shape(e))
        return codes, residual

    def vote(self, gathered: tf.Tensor):
        """Checks fingerprints, then combines; returns (update, dropped)."""
        total_k = sum(self.ks)
        prints = gathered[:, 0]
        same = tf.equal(prints, self.fingerprint)
        raising = self.config.on_invalid == "raise"
        # One settings check per step, shared by every consumer below.
        settings = (self._same_settings(prints, same) if raising or
                    self.config.method == "topk_values" else None)
        undecodable = tf.zeros([], tf.int32)
        if self.config.wire == "rice":
            if raising:
                with tf.control_dependencies([settings]):
                    codes = wire.rice_decode(gathered[:, 1:],
                                             self.total_size, total_k)
            else:  # an undecodable message abstains (all padding)
                codes, valid = wire.rice_decode(
                    gathered[:, 1:], self.total_size, total_k,
                    on_invalid="drop")
                undecodable = tf.reduce_sum(tf.cast(~valid & same,
                                                    tf.int32))
        else:
            codes = gathered[:, 1:1 + total_k]
        if self.config.method == "topk_values":
            return self._mean_of_sent(codes, gathered[:, 1 + total_k:],
                                      settings)
        weights = self._reliability_weights()
        if raising:
            with tf.control_dependencies([settings]):
                votes = ops.majority_vote(codes, self.total_size, weights)
            dropped = tf.zeros([], tf.int32)
        else:
            # Drop mode: a row with a foreign fingerprint abstains like any
            # other malformed row (its codes are replaced by padding).
            codes = tf.where(same[:, None], codes, ops.PAD_CODE)
            votes, dropped = ops.majority_vote(codes, self.total_size,
                                               weights, on_invalid="drop")
            dropped += tf.reduce_sum(tf.cast(~same, tf.int32)) + undecodable
        self._update_reliability(codes, votes)
        return votes, dropped

    def _reliability_weights(self):
        """signSGD-FV weights, ``clip(1 + log((a + 1) / (d + 1)), 0, 5)``
        from each row's past agreements ``a`` / disagreements ``d`` with
        the vote: 1 for every row at the start, 0 for a row that keeps
        contradicting the majority (a sign flipper), larger for reliable
        rows. None for the plain vote."""
        if self.agree is None:
            return None
        llr = tf.math.log((self.agree.value + 1.0) /
                          (self.disagree.value + 1.0))
        return tf.clip_by_value(1.0 + llr, 0.0, WEIGHT_MAX)

    def _update_reliability(self, codes, votes):
        if self.agree is None:
            return
        live = codes >= 0  # invalid rows may hold garbage: clamp the index
        index = tf.clip_by_value(codes // 2, 0, self.total_size - 1)
        sign = tf.cast(1 - 2 * (codes % 2), tf.float32)
        product = tf.gather(votes, index) * sign
        agree = tf.reduce_sum(tf.cast(live & (product > 0), tf.float32), 1)
        disagree = tf.reduce_sum(tf.cast(live & (product < 0), tf.float32),
                                 1)
        self.agree.assign_add(agree)
        self.disagree.assign_add(disagree)

    def _same_settings(self, prints, same):
        return tf.debugging.Assert(
            tf.reduce_all(same),
            [tf.strings.format(
                "tf_sparsesign: workers were started with different "
                "settings (density/k/error_feedback/wire or model shapes): "
                "settings fingerprints per replica {} differ from this "
                "worker's {}", (prints, self.fingerprint))])

    def _mean_of_sent(self, codes, value_bits, settings):
        """top-K SGD baseline: the sum of the values every replica sent.
        Like the dense path's SUM this is the mean gradient, since Keras
        already divides each replica's loss by the number of replicas."""
        with tf.control_dependencies([settings]):
            live = codes >= 0
        index = tf.boolean_mask(codes, live) // 2
        values = tf.boolean_mask(tf.bitcast(value_bits, tf.float32), live)
        total = tf.tensor_scatter_nd_add(tf.zeros([self.total_size]),
                                         index[:, None], values)
        return total, tf.zeros([], tf.int32)

    def split(self, votes: tf.Tensor, slots, variables):
        """The global ternary vector back into per-variable gradients."""
        out = []
        for slot, v in zip(slots, variables):
            start = self.offsets[slot]
            piece = votes[start:start + self.sizes[slot]]
            out.append(tf.cast(tf.reshape(piece, v.shape), v.dtype))
        return out

    # -- helpers ---------------------------------------------------------

    def _dense(self, ctx, grads_and_vars):
        present = [(i, g) for i, (g, _) in enumerate(grads_and_vars)
                   if g is not None]
        grads = [tf.convert_to_tensor(g) for _, g in present]
        if self.config.adversary is not None:  # experiment hook
            grads = [self.config.adversary.corrupt_values(g) for g in grads]
        reduced = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        n = sum(self.sizes[self._slot(grads_and_vars[i][1])]
                for i, _ in present)
        ring = dense_ring_bytes(n, self.num_replicas)
        self._add("steps", 1)
        self.counters["message_bytes"].assign(4 * n)
        self._add("bytes_sent", ring)
        self._add("bytes_received", ring)
        self._add("dense_bytes", ring)
        out = list(grads_and_vars)
        for (i, _), g in zip(present, reduced):
            out[i] = (g, grads_and_vars[i][1])
        return out

    def _count(self, message, gathered, dropped):
        """Counters from the actual tensors' sizes (ring-collective view:
        every other replica's message passes each replica's link once)."""
        # Only after the step's messages exist: a failed step counts nothing.
        with tf.control_dependencies([gathered, dropped]):
            own = tf.cast(tf.size(message), tf.int64) * 4
            everyone = tf.cast(tf.size(gathered), tf.int64) * 4
            dense = dense_ring_bytes(self.total_size, self.num_replicas)
            self._add("steps", 1)
            self.counters["message_bytes"].assign(own)
            self._add("bytes_sent", everyone - own)
            self._add("bytes_received", everyone - own)
            self._add("dense_bytes", dense)
            self._add("dropped_rows", tf.cast(dropped, tf.int64))

    def _add(self, name, value):
        self.counters[name].assign_add(tf.cast(value, tf.int64))

    def _slot(self, variable) -> int:
        key = self._var_key(variable)
        if key not in self._index:
            raise ValueError(f"tf_sparsesign: variable {variable.name} was "
                             "not among those the optimizer was built with")
        return self._index[key]

    def read_counters(self) -> dict:
        """Counter values (replica 0's) as Python ints."""
        return {name: int(_first_replica(var))
                for name, var in self.counters.items()}

    def memory_values(self, slot: int) -> list:
        """Each replica's error-feedback memory of variable ``slot``."""
        value = self.memories[slot].value
        values = getattr(value, "values", None) or (value,)
        return [tf.convert_to_tensor(v) for v in values]


def _first_replica(variable):
    value = variable.value if hasattr(variable, "value") else variable
    values = getattr(value, "values", None)
    return (values[0] if values else value).numpy()


def _creation_scope(owner):
    """The strategy scope state variables must be created in: the current
    one, else the owner's (``optimizer.build`` called outside the scope)."""
    if tf.distribute.has_strategy():
        return contextlib.nullcontext()
    strategy = getattr(owner, "_distribution_strategy", None)
    return strategy.scope() if strategy is not None else \
        contextlib.nullcontext()


def _add_replica_local(owner, reference, name):
    """A per-replica (sync-on-read) variable shaped like ``reference``."""
    from keras.src import backend

    with tf.distribute.get_strategy().extended.colocate_vars_with(
            reference.value if hasattr(reference, "value") else reference):
        var = backend.Variable(
            initializer="zeros", shape=reference.shape,
            dtype=reference.dtype, trainable=False,
            synchronization="on_read", aggregation="only_first_replica",
            name=f"{name}_{_clean(reference.name)}")
    # Not tracked as an ordinary optimizer variable: sync-on-read variables
    # restore one value to all replicas; state.py saves each replica's.
    return var


def _add_counter(owner, name, shape=(), dtype="int64"):
    from keras.src import backend

    var = backend.Variable(
        initializer="zeros", shape=shape, dtype=dtype, trainable=False,
        synchronization="on_read", aggregation="only_first_replica",
        name=name)
    owner._track_variable(var)
    return var


def _clean(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def dense_ring_bytes(num_elements: int, num_replicas: int) -> int:
    """Bytes one replica sends in a ring all-reduce of fp32 values."""
    r = max(int(num_replicas), 1)
    return int(math.floor(2 * (r - 1) / r * 4 * num_elements))
