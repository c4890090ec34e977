"""tf.distribute strategies whose Keras optimizers vote instead of summing.

Under ``SparseSignStrategy().scope()`` (or the multi-worker one) any Keras
optimizer built there aggregates gradients by S3GD-MV: see
:mod:`tf_sparsesign.collective` for the data path and
:mod:`tf_sparsesign.hooks` for how Keras is routed to it.
"""

from __future__ import annotations

import itertools

import tensorflow as tf

from . import hooks, policy
from .collective import VoteConfig

DEFAULT_TIMEOUT_SECONDS = 600.0
_KEY_BASES = itertools.count(100_000, 100_000)


def is_sparse_sign_strategy(strategy) -> bool:
    """True for strategies of this package."""
    return isinstance(getattr(strategy, "sparse_sign_config", None),
                      VoteConfig)


class SparseSignStrategy(tf.distribute.MirroredStrategy):
    """``MirroredStrategy`` (one host, several devices) with S3GD-MV.

    Any Keras optimizer created and built under this strategy's scope sends
    the top-K signs of its error-accumulated gradient per replica and applies
    the majority vote, with no change to user code; everything else
    (variables, datasets, metrics, SyncBatchNorm) is plain MirroredStrategy.

    Args:
      density: fraction of each tensor sent per step, in (0, 1], or
        ``"auto"``. Bits per replica per step: ``32 * sum(K)`` (int32
        codes) vs ``N`` (signSGD-MV) vs ``32 * N`` (dense fp32).
      k: total entries per step spread over variables by size.
      error_feedback: accumulate what was not sent (default on).
      dense: baseline mode: ordinary dense all-reduce (for A/B runs).
      on_invalid: ``"raise"`` or ``"drop"`` for malformed messages.
      wire: ``"int32"`` (wire format v1, default) or ``"rice"``: Rice-coded
        gaps and signs (docs/WIRE.md), ~3.5x smaller at 1% density.
      method: ``"sign_vote"`` (S3GD-MV), or the baselines
        ``"topk_values"`` (top-K SGD with error feedback, sending values)
        and ``"random_k"`` (K random coordinates' signs, voted).
      vote: ``"plain"`` majority vote, or ``"weighted"``: signSGD-FV (Park
        & Lee, ISIT 2024), each replica weighted by
        ``clip(1 + log((agree + 1) / (disagree + 1)), 0, 5)`` from how often
        its signs agreed with past votes. Off by default.
      adversary: **test/experiment hook only**, an
        :class:`tf_sparsesign.adversary.Adversary` making chosen replicas
        send flipped/random/malformed messages. Off by default.
      devices, cross_device_ops: as for ``tf.distribute.MirroredStrategy``.

    Example:

    >>> import keras, tensorflow as tf, tf_sparsesign
    >>> strategy = tf_sparsesign.SparseSignStrategy(density=0.01)
    >>> with strategy.scope():
    ...     model = keras.Sequential([keras.Input((4,)),
    ...                               keras.layers.Dense(2)])
    ...     model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
    >>> _ = model.fit(tf.ones((8, 4)), tf.zeros((8, 2)), verbose=0)
    """

    def __init__(self, density: policy.Density = 0.01, *,
                 k: int | None = None, error_feedback: bool = True,
                 dense: bool = False, on_invalid: str = "raise",
                 wire: str = "int32", method: str = "sign_vote",
                 vote: str = "plain", adversary=None,
                 devices=None, cross_device_ops=None):
        config = VoteConfig(density=density, k=k,
                            error_feedback=error_feedback, dense=dense,
                            on_invalid=on_invalid, wire=wire, method=method,
                            vote=vote, adversary=adversary)
        # Several strategies in one process (a sweep, a test suite) would
        # otherwise reuse collective group/instance keys, and TF's collective
        # executor then mixes up their ops ("Shape mismatch in the
        # collective instance"). Keys are process-local here.
        self._collective_key_base = next(_KEY_BASES)
        super().__init__(devices=devices, cross_device_ops=cross_device_ops)
        self.sparse_sign_config = config
        hooks.install()


class MultiWorkerSparseSignStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """``MultiWorkerMirroredStrategy`` (cluster from ``TF_CONFIG``) with
    S3GD-MV; same arguments as :class:`SparseSignStrategy` plus:

    Args:
      cluster_resolver: as for ``MultiWorkerMirroredStrategy``.
      communication_options: as there; by default a collective timeout of
        ``timeout_seconds`` so a dead or missing worker gives an error, not
        a hang.
      timeout_seconds: the collective timeout when no options are given.

    ``model.fit`` works although plain Keras 3.15 ``fit`` fails under
    ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585,
    tensorflow/tensorflow#72388); see :meth:`reduce`.
    """

    def __init__(self, density: policy.Density = 0.01, *,
                 k: int | None = None, error_feedback: bool = True,
                 dense: bool = False, on_invalid: str = "raise",
                 wire: str = "int32", method: str = "sign_vote",
                 vote: str = "plain", adversary=None,
                 cluster_resolver=None,
                 communication_options=None,
                 timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS):
        config = VoteConfig(density=density, k=k,
                            error_feedback=error_feedback, dense=dense,
                            on_invalid=on_invalid, wire=wire, method=method,
                            vote=vote, adversary=adversary)
        if not timeout_seconds or timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got "
                             f"{timeout_seconds}")
        if communication_options is None:
            communication_options = tf.distribute.experimental.\
                CommunicationOptions(timeout_seconds=float(timeout_seconds))
        super().__init__(cluster_resolver=cluster_resolver,
                         communication_options=communication_options)
        self.sparse_sign_config = config
        hooks.install()
        self._check_same_settings()

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
            raise ValueError(
                "tf_sparsesign: workers were started with different settings"
                f": settings fingerprints per replica {everyone}; this worker"
                f" (fingerprint {mine}) has {self.sparse_sign_config}. Start "
                "every worker with the same density/k/error_feedback/dense/"
                "on_invalid/wire.")

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
