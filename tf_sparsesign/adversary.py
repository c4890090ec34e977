"""A test/experiment hook that makes chosen replicas misbehave.

**For robustness experiments and tests only; off by default.** As in the
authors' reference simulation (chanho26/SignSGD_Codec): ``"signflip"``
sends every sign inverted (the reference's ``det`` attack), ``"random"``
sends random signs (``sto``). ``"garbage"`` sends a malformed message
(indices out of range), to exercise ``on_invalid="drop"``.

Example:

>>> from tf_sparsesign.adversary import Adversary
>>> Adversary("signflip", replicas=(0, 3))
Adversary(mode='signflip', replicas=(0, 3), seed=0)
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

MODES = ("signflip", "random", "garbage")


@dataclasses.dataclass(frozen=True)
class Adversary:
    """Which replicas misbehave and how (see module docstring).

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

    def corrupt_codes(self, codes: tf.Tensor, num_elements: int) -> tf.Tensor:
        """The message codes (no header) this replica actually sends."""
        live = codes >= 0
        if self.mode == "signflip":
            bad = tf.where(live, tf.bitwise.bitwise_xor(codes, 1), codes)
        elif self.mode == "random":
            bits = tf.random.stateless_uniform(
                tf.shape(codes), seed=[self.seed, 1], minval=0, maxval=2,
                dtype=tf.int32)
            bad = tf.where(live, tf.bitwise.bitwise_or(
                tf.bitwise.bitwise_and(codes, -2), bits), codes)
        else:  # garbage: every index out of range
            bad = tf.fill(tf.shape(codes), 2 * num_elements)
        return tf.where(self._is_me(), bad, codes)

    def corrupt_words(self, words: tf.Tensor) -> tf.Tensor:
        """A Rice-coded message of a ``"garbage"`` replica: scrambled words
        (other modes act on the codes before encoding)."""
        if self.mode != "garbage":
            return words
        bad = tf.bitwise.bitwise_xor(words, 0x2545F491)
        return tf.where(self._is_me(), bad, words)

    def corrupt_values(self, values: tf.Tensor) -> tf.Tensor:
        """Dense gradients or sent values of a misbehaving replica."""
        if self.mode == "signflip":
            bad = -values
        elif self.mode == "random":
            signs = tf.random.stateless_uniform(
                tf.shape(values), seed=[self.seed, 2], minval=0, maxval=2,
                dtype=tf.int32)
            bad = tf.abs(values) * tf.cast(2 * signs - 1, values.dtype)
        else:
            bad = tf.fill(tf.shape(values), tf.constant(float("nan"),
                                                        values.dtype))
        return tf.where(self._is_me(), bad, values)
