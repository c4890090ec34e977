"""tf.distribute strategies whose Keras optimizers vote instead of summing.

Under ``SparseSignStrategy().scope()`` (or the multi-worker one) any Keras
optimizer built there aggregates gradients by S3GD-MV: see
:mod:`tf_sparsesign.aggregation` for the data path and :mod:`.routing` for
how Keras is routed to it.
"""

from __future__ import annotations

import itertools

import tensorflow as tf

from .. import config as config_lib
from ..policy import Density
from . import _patches, keras2, routing

DEFAULT_TIMEOUT_SECONDS = 600.0
_KEY_BASES = itertools.count(100_000, 100_000)


@config_lib.document
class SparseSignStrategy(tf.distribute.MirroredStrategy):
    """``MirroredStrategy`` (one host, several devices) with S3GD-MV.

    Any Keras optimizer created and built under this strategy's scope votes
    instead of summing, with no change to user code. Per step, on every
    replica::

        e = memory + g                     # error feedback
        codes = top_k_signs(e, K)          # positions and signs
        memory = e with codes cleared      # what was not sent
        rows = all_gather(codes)           # one collective per step
        g = sign(sum of rows)              # majority vote: -1 / 0 / +1
        optimizer.apply(g)                 # SGD: x -= lr * g

    Everything else (variables, datasets, metrics, SyncBatchNorm) is plain
    MirroredStrategy.

    Args:
      {{settings}}
      devices: as for ``tf.distribute.MirroredStrategy`` (default: all).
      cross_device_ops: as for ``tf.distribute.MirroredStrategy``.

    Example:

    >>> import keras, tensorflow as tf, tf_sparsesign
    >>> strategy = tf_sparsesign.SparseSignStrategy(density=0.01)
    >>> with strategy.scope():
    ...     model = keras.Sequential([keras.Input((4,)),
    ...                               keras.layers.Dense(2)])
    ...     model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    >>> _ = model.fit(tf.ones((8, 4)), tf.zeros((8, 2)), verbose=0)
    """

    def __init__(self, density: Density = 0.01, *, devices=None,
                 cross_device_ops=None, **settings):
        config = config_lib.SparseSignConfig.from_settings(
            "SparseSignStrategy", density, settings)
        _patches.take_fresh_collective_keys(self, next(_KEY_BASES))
        super().__init__(devices=devices, cross_device_ops=cross_device_ops)
        self.sparse_sign_config = config
        routing.install()
        keras2.install_if_in_use()

    def run(self, fn, args=(), kwargs=None, options=None):
        """``MirroredStrategy.run``; tf_keras imported after this strategy
        was made is routed to the vote before the step runs."""
        keras2.install_if_in_use()
        return super().run(fn, args=args, kwargs=kwargs, options=options)


@config_lib.document
class MultiWorkerSparseSignStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """``MultiWorkerMirroredStrategy`` (cluster from ``TF_CONFIG``) with
    S3GD-MV: the step of :class:`SparseSignStrategy`, across workers.

    At start the workers check (one tiny all-gather) that they were started
    with the same settings, and a collective timeout turns a dead or
    missing worker into an error instead of a hang. ``model.fit`` works
    although plain Keras 3.15 ``fit`` fails under
    ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585,
    tensorflow/tensorflow#72388); see :meth:`reduce`.

    Args:
      {{settings}}
      cluster_resolver: as for ``MultiWorkerMirroredStrategy``.
      communication_options: as there; by default a collective timeout of
        ``timeout_seconds``.
      timeout_seconds: the collective timeout when no options are given
        (default 600).

    Example (each worker runs this with its own ``TF_CONFIG``; see
    ``examples/multiworker/``)::

        strategy = tf_sparsesign.MultiWorkerSparseSignStrategy(density=0.01)
        with strategy.scope():
            model = make_model()
            model.compile(optimizer=keras.optimizers.SGD(1e-3), loss=...)
        model.fit(x, y, batch_size=global_batch)
    """

    def __init__(self, density: Density = 0.01, *, cluster_resolver=None,
                 communication_options=None,
                 timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
                 **settings):
        config = config_lib.SparseSignConfig.from_settings(
            "MultiWorkerSparseSignStrategy", density, settings)
        if not timeout_seconds or timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got "
                             f"{timeout_seconds}")
        if communication_options is None:
            communication_options = tf.distribute.experimental.\
                CommunicationOptions(timeout_seconds=float(timeout_seconds))
        super().__init__(cluster_resolver=cluster_resolver,
                         communication_options=communication_options)
        self.sparse_sign_config = config
        routing.install()
        keras2.install_if_in_use()
        self._check_same_settings()

    def run(self, fn, args=(), kwargs=None, options=None):
        """``MultiWorkerMirroredStrategy.run``; tf_keras imported after this
        strategy was made is routed to the vote before the step runs."""
        keras2.install_if_in_use()
        return super().run(fn, args=args, kwargs=kwargs, options=options)

    def _check_same_settings(self) -> None:
        """Fails fast, before any variable exists, when workers were started
        with different settings (later mismatches in variable creation give
        only obscure collective errors). One tiny all-gather, once."""
        mine = self.sparse_sign_config.fingerprint([], [])

        def gather():
            ctx = tf.distribute.get_replica_context()
            return ctx.all_gather(tf.constant([mine], tf.int32), axis=0)

        everyone = self.experimental_local_results(self.run(gather))[0]
        everyone = [int(v) for v in everyone.numpy()]
        if any(v != mine for v in everyone):
            raise ValueError(config_lib.mismatch_message(
                everyone, mine, self.sparse_sign_config))

    def reduce(self, reduce_op, value, axis):
        """``Strategy.reduce`` with two upstream failures worked around.

        keras-team/keras#20585 / tensorflow/tensorflow#72388:

        1. Keras ``_maybe_symbolic_build`` mean-reduces a whole batch held as
           a tuple/dict of PerReplica values, which the collective
           ``_reduce_to`` cannot map over. Only shapes matter there, so a
           nested structure is answered with the first local replica's
           values (no collective, nothing averaged).
        2. Keras ``reduce_per_replica`` reduces scalar logs with ``axis=0``
           ("Invalid reduction dimension 0 for input with 0 dimensions");
           for scalars the only meaningful axis is ``None``.
        """
        if _is_nested_distributed(value):
            return tf.nest.map_structure(
                lambda v: self.experimental_local_results(v)[0]
                if isinstance(v, tf.distribute.DistributedValues) else v,
                value)
        if axis is not None and _rank(value) == 0:
            axis = None
        return super().reduce(reduce_op, value, axis)


def _is_nested_distributed(value) -> bool:
    """A tuple/list/dict holding DistributedValues (not one itself)."""
    return tf.nest.is_nested(value) and any(
        isinstance(v, tf.distribute.DistributedValues)
        for v in tf.nest.flatten(value))


def _rank(value) -> int | None:
    if isinstance(value, tf.distribute.DistributedValues):
        value = value.values[0]
    shape = getattr(value, "shape", None)
    return None if shape is None else tf.TensorShape(shape).rank
