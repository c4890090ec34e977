"""An adversary hook that makes chosen replicas misbehave.

**For robustness experiments and tests only; off by default.** Passed as
``adversary=`` to any entry point, it implements the aggregation's hook
(:mod:`tf_sparsesign.aggregation.adversary_hook`). As in the authors'
reference simulation (chanho26/SignSGD_Codec): ``"signflip"`` sends every
sign inverted (the reference's ``det`` attack), ``"random"`` sends random
signs (``sto``). ``"garbage"`` sends a malformed message (indices out of
range, invalid packed bytes, or a scrambled Rice stream), to exercise ``on_invalid="drop"``.

Example:

>>> from tf_sparsesign.experiments import Adversary
>>> Adversary("signflip", replicas=(0, 3))
Adversary(mode='signflip', replicas=(0, 3), seed=0)
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

MODES = ("signflip", "random", "garbage")


@dataclasses.dataclass(frozen=True)
class Adversary:
    """Which replicas misbehave and how (see the module docstring).

    Attributes:
      mode: ``"signflip"``, ``"random"`` or ``"garbage"``.
      replicas: global replica ids (``replica_id_in_sync_group``).
      seed: seed for ``"random"``.
    """

    mode: str
    replicas: tuple = ()
    seed: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"Adversary mode must be one of {MODES}, got "
                             f"{self.mode!r}")
        replicas = tuple(int(r) for r in self.replicas)
        if any(r < 0 for r in replicas):
            raise ValueError(f"Adversary replicas must be >= 0, got "
                             f"{self.replicas}")
        object.__setattr__(self, "replicas", replicas)

    def _is_me(self) -> tf.Tensor:
        ctx = tf.distribute.get_replica_context()
        me = tf.cast(ctx.replica_id_in_sync_group, tf.int32)
        return tf.reduce_any(tf.equal(me, tf.constant(self.replicas or (-1,),
                                                      tf.int32)))

    def corrupt_selection(self, codes, values, num_elements: int):
        """Flipped or random signs (codes, and values if any)."""
        if self.mode == "garbage":  # malformed at the message level instead
            return codes, values
        live = codes >= 0
        if self.mode == "signflip":
            bad = tf.where(live, tf.bitwise.bitwise_xor(codes, 1), codes)
        else:
            bits = tf.random.stateless_uniform(
                tf.shape(codes), seed=[self.seed, 1], minval=0, maxval=2,
                dtype=tf.int32)
            bad = tf.where(live, tf.bitwise.bitwise_or(
                tf.bitwise.bitwise_and(codes, -2), bits), codes)
        if values is not None:
            values = self.corrupt_gradients([values])[0]
        return tf.where(self._is_me(), bad, codes), values

    def corrupt_message(self, words, codec: str, num_elements: int):
        """A ``"garbage"`` replica's message: every int32 code out of range,
        every packed byte invalid (255), or a scrambled Rice stream."""
        if self.mode != "garbage":
            return words
        if codec == "int32":
            bad = tf.fill(tf.shape(words), 2 * num_elements)
        elif codec == "packed":  # bytes 255: no base-3 byte
            bad = tf.fill(tf.shape(words), -1)
        else:
            bad = tf.bitwise.bitwise_xor(words, 0x2545F491)
        return tf.where(self._is_me(), bad, words)

    def corrupt_gradients(self, grads):
        """Dense gradients (or sent values) of a misbehaving replica:
        negated, random signs, or NaN."""
        return [tf.where(self._is_me(), self._bad_values(g), g)
                for g in grads]

    def _bad_values(self, values):
        if self.mode == "signflip":
            return -values
        if self.mode == "random":
            signs = tf.random.stateless_uniform(
                tf.shape(values), seed=[self.seed, 2], minval=0, maxval=2,
                dtype=tf.int32)
            return tf.abs(values) * tf.cast(2 * signs - 1, values.dtype)
        return tf.fill(tf.shape(values), tf.constant(float("nan"),
                                                     values.dtype))
