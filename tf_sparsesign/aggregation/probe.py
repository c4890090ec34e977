"""The real parts of an optimizer's aggregation step at a model's sizes, on
scratch state and without a network: what the calibration
(:func:`tf_sparsesign.calibrate`) and the benchmarks time, and what tests
call part by part.

:class:`StepProbe` builds the aggregation with
:func:`.build.build_aggregator` — the same parts, the same code as in
training — over scratch variables of the given shapes (plain
``tf.Variable``, no strategy), the one-host collectives
(:data:`.exchange.collectives.LOCAL`: stacking instead of a network) and
direct writes. The M replicas' messages come from M different random
gradients, so the vote touches as many coordinates as M independent
workers would. Nothing of a real model or optimizer is touched.

Example:

>>> from tf_sparsesign.config import SparseSignConfig
>>> probe = StepProbe(SparseSignConfig(density=0.01), [(100, 10), (10,)], 4)
>>> sorted(probe.parts())
['apply', 'check_finite', 'encode', 'host_step', 'message']
>>> int(probe.parts()["host_step"]().update.indices.shape[0]) > 0
True
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from .. import ops
from .build import build_aggregator
from .exchange.collectives import LOCAL


class ScratchFactory:
    """Plain ``tf.Variable`` state (the
    :class:`~.interfaces.StateFactory` contract, one replica)."""

    def replica_local(self, reference, name: str):
        return tf.Variable(tf.zeros(reference.shape, reference.dtype),
                           trainable=False, name=name)

    def tracked(self, name: str, shape=(), dtype="int64"):
        return tf.Variable(tf.zeros(shape, tf.as_dtype(dtype)),
                           trainable=False, name=name)

    def untracked(self, name: str, shape=(), dtype="int64"):
        return self.tracked(name, shape, dtype)


def variable_key(variable):
    """A stable key of a plain ``tf.Variable``."""
    return variable.ref()


class StepProbe:
    """Scratch copy of one optimizer's aggregation (see the module
    docstring).

    Args:
      config: the :class:`~tf_sparsesign.config.SparseSignConfig`.
      shapes: the trainable variables' shapes, in the optimizer's order.
      num_replicas: M, replicas in sync.
      dtype: the variables' dtype.
      sgd: plain SGD's sparse apply (True) or gradients for a wrapped
        optimizer (False).
      seed: seed of the random gradients.

    Attributes:
      aggregator: the :class:`.aggregator.Aggregator` under test.
      grads: this replica's gradients (random normal).
    """

    def __init__(self, config, shapes: Sequence, num_replicas: int,
                 dtype="float32", sgd: bool = True, seed: int = 0):
        self.variables = [tf.Variable(tf.zeros(s, dtype), name=f"v{i}")
                          for i, s in enumerate(shapes)]
        self.aggregator = build_aggregator(
            config, self.variables, num_replicas, ScratchFactory(),
            variable_key, learning_rate=(lambda: 1e-3) if sgd else None,
            collectives=LOCAL)
        self.num_replicas = int(num_replicas)
        self.grads = self._gradients(seed, 0)
        self.present = [(i, i, g) for i, g in enumerate(self.grads)]
        messages = [self._message(self._gradients(seed, r))
                    for r in range(self.num_replicas)]
        self._words = [m.words for m in messages]
        self._update = self.aggregator.exchange.host_step(self._words).update

    def _gradients(self, seed: int, replica: int) -> list:
        return [tf.random.stateless_normal(v.shape, [seed, replica * 1000 + i],
                                           dtype=v.dtype)
                for i, v in enumerate(self.variables)]

    def _message(self, grads):
        agg = self.aggregator
        step = agg.memory.begin()
        codes, values = agg.encode(step, [(i, i, g) for i, g in
                                          enumerate(grads)])
        step.commit(after=codes)
        return agg.exchange.message(codes, values)

    def parts(self) -> dict:
        """Zero-argument callables (``tf.function``), each running one part
        of the step once:

        * ``check_finite`` — the finiteness check of every gradient;
        * ``encode`` — error feedback and selection of every variable
          (this replica), codes in the global index space;
        * ``message`` — the exchange's message from those codes (codec
          words; buckets when sharded);
        * ``host_step`` — M replicas' messages brought together (stacked),
          decoded and voted (and, sharded, the shard votes' downlink);
        * ``apply`` — the update applied (sparse SGD) or turned into
          gradients for the wrapped optimizer.
        """
        agg, present, update = self.aggregator, self.present, self._update
        codes, values = self._encode_once()

        def check_finite():
            return [ops.check_finite(g, "probe gradient")
                    for g in self.grads]

        def encode():
            step = agg.memory.begin()
            out = agg.encode(step, present)
            step.commit(after=out[0])
            return out

        def apply():
            agg.apply.host_step(update, present)
            grads_and_vars = [(g, v) for g, v in zip(self.grads,
                                                     self.variables)]
            return [g for g, _ in agg.apply.gradients(update, present,
                                                       grads_and_vars)
                    if g is not None] or [tf.constant(0)]

        return {"check_finite": tf.function(check_finite),
                "encode": tf.function(encode),
                "message": tf.function(
                    lambda: agg.exchange.message(codes, values).words),
                "host_step": tf.function(
                    lambda: agg.exchange.host_step(self._words)),
                "apply": tf.function(apply)}

    def _encode_once(self):
        step = self.aggregator.memory.begin()
        codes, values = self.aggregator.encode(step, self.present)
        step.commit(after=codes)
        return codes, values
