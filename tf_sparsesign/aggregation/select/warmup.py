"""Density warm-up (pilot, DGC-style): top-K signs whose K falls
geometrically from FACTOR x K to K over STEPS steps. The message keeps the
largest K (unsent slots are -1), so bits are counted at the largest K."""

from __future__ import annotations

import math

import tensorflow as tf

from ... import ops
from . import Selection

FACTOR = 16
STEPS = 100


class WarmupTopKSigns:
    def __init__(self, seed: int = 0):
        self.step = tf.Variable(
            tf.zeros([], tf.int64), trainable=False,
            synchronization=tf.VariableSynchronization.ON_READ,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    def width(self, k: int, n: int) -> int:
        return min(n, FACTOR * k)

    def select(self, e, k: int, slot: int, keep_residual: bool) -> Selection:
        n = int(e.shape.num_elements())
        big = min(n, FACTOR * k)
        codes, residual = ops.sparse_sign_encode(e, big,
                                                 return_residual=True)
        t = tf.cast(tf.minimum(tf.convert_to_tensor(self.step), STEPS),
                    tf.float32) / STEPS
        kt = tf.cast(tf.math.ceil(big * tf.pow(k / max(big, 1), t)),
                     tf.int32)
        kt = tf.clip_by_value(kt, min(k, big), big)
        flat = tf.reshape(e, [-1])
        live = codes >= 0
        idx = tf.maximum(codes // 2, 0)
        mags = tf.where(live, tf.abs(tf.gather(flat, idx)), -1.0)
        thr = tf.math.top_k(mags, kt).values[-1]
        keep = live & (mags >= thr)
        back = live & ~keep
        residual = tf.tensor_scatter_nd_add(
            tf.reshape(residual, [-1]), tf.reshape(idx, [-1, 1]),
            tf.where(back, tf.gather(flat, idx), 0.0))
        if slot == 0:
            self.step.assign_add(1)
        return Selection(tf.where(keep, codes, -1),
                         tf.reshape(residual, tf.shape(e))
                         if keep_residual else None)
