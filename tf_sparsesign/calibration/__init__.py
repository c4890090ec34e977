"""Calibration: measure this cluster's collectives and this host's compute,
once, inside the real job; the time model (:mod:`tf_sparsesign.policy.
timing`) predicts every option's step time from the profile.

:func:`calibrate` runs on every worker of the job (like ``model.fit``),
times each collective kind the exchanges use at fixed sizes
(:mod:`.collectives`), each compute part of the step at the model's sizes
(:mod:`.compute`) and forward+backward of the model when a model and a
batch are given, then combines every worker's numbers with one small
collective (the slowest worker's time of each, since every step waits for
the slowest), fits them and returns the same
:class:`~tf_sparsesign.policy.Profile` on every worker. Bounded by
construction: fixed sizes, one warm-up and ``repeat`` timed calls of each.
``tf-sparsesign calibrate`` is the command-line form.
"""

from __future__ import annotations

import datetime
import math
import time

import tensorflow as tf

from .. import policy
from ..config import SparseSignConfig
from . import collectives as collectives_lib
from . import compute

#: What is timed by default: the exchanges that give the same update as
#: one another (with each codec), and the dense baseline.
DEFAULT_OPTIONS = ("dense", "allgather/int32", "allgather/rice",
                   "allgather/packed", "sharded/int32", "sharded/rice")
#: The calibration's stages, whose seconds the profile keeps.
STAGES = ("collectives", "compute", "forward_backward")
#: Tensor sizes the parts are timed at when no model is given.
DEFAULT_SHAPES = ((1024, 1024),)


def _shapes(model, sizes):
    if model is not None:
        return [tuple(int(d) for d in v.shape)
                for v in model.trainable_variables]
    if sizes is not None:
        return [(int(s),) for s in sizes]
    return [tuple(s) for s in DEFAULT_SHAPES]


def _hosts(strategy) -> tuple:
    resolver = strategy.cluster_resolver
    if resolver is None:
        return ("localhost",)
    return tuple(resolver.cluster_spec().as_dict().get("worker", ()))


def _barrier(strategy):
    """A callable that returns once every replica called it (one tiny
    all-reduce)."""
    def replica():
        return tf.distribute.get_replica_context().all_reduce(
            "sum", tf.ones([1]))

    @tf.function
    def run():
        return strategy.experimental_local_results(strategy.run(replica))

    return lambda: [t.numpy() for t in run()]


def _everyone_max(strategy, values: list) -> list:
    """The maximum of each number over all replicas (one all-gather), and
    the chief's clock as the last entry."""
    mine = tf.constant(values + [time.time()], tf.float64)

    def gather():
        ctx = tf.distribute.get_replica_context()
        return ctx.all_gather(mine[None], axis=0)

    rows = strategy.experimental_local_results(strategy.run(gather))[0]
    rows = rows.numpy()
    return [float(v) for v in rows[:, :-1].max(axis=0)] + [
        float(rows[0, -1])]


def calibrate(strategy, model=None, batch=None, path=None, *,
              config: SparseSignConfig | None = None, options=None,
              sizes=None, sgd: bool = True, repeat: int = 3
              ) -> policy.Profile:
    """Measures the cluster of ``strategy`` and returns its
    :class:`~tf_sparsesign.policy.Profile` (the same on every worker);
    saves it as JSON at ``path`` when given. Call it on every worker,
    outside ``strategy.scope()``-bound training (it launches collectives).

    Args:
      strategy: the job's strategy (``MultiWorkerSparseSignStrategy`` or
        ``MultiWorkerMirroredStrategy`` across workers; any
        ``MirroredStrategy`` on one host).
      model: a Keras model: its trainable tensors' shapes are the sizes
        the compute parts are timed at, and with ``batch`` its
        forward+backward is timed.
      batch: one replica's batch, ``x`` or ``(x, y)``.
      path: where to save the profile (None: not saved).
      config: the settings (density, vote, ...) the parts are built with
        (default: the strategy's, else ``SparseSignConfig()``).
      options: option names to time (default :data:`DEFAULT_OPTIONS`).
      sizes: tensor element counts when no model is given (default one
        1024 x 1024 tensor).
      sgd: time plain SGD's sparse apply (True) or the gradients handed to
        a wrapped optimizer.
      repeat: timed calls of each measurement.
    """
    start = time.perf_counter()
    if config is None:
        config = getattr(strategy, "sparse_sign_config", None) or \
            SparseSignConfig()
    m = strategy.num_replicas_in_sync
    options = [policy.Option.parse(o) for o in (options or DEFAULT_OPTIONS)]
    shapes = _shapes(model, sizes)
    clock = [time.perf_counter()]

    def lap():
        clock.append(time.perf_counter())
        return clock[-1] - clock[-2]

    points = collectives_lib.time_collectives(strategy, repeat)
    stages = [lap()]
    barrier = _barrier(strategy)
    parts = compute.time_parts(config, shapes, m, options, sgd, repeat,
                               barrier)
    stages.append(lap())
    barrier()
    fb = (compute.forward_backward(strategy, model, batch, repeat)
          if model is not None and batch is not None else None)
    stages.append(lap())
    # Every worker's numbers, the slowest of each, so all fit the same.
    flat = [t for kind in sorted(points) for _, t in points[kind]]
    flat += [t for name in sorted(parts) for _, t in parts[name]]
    flat += stages + [-1.0 if fb is None else fb,
                      time.perf_counter() - start]
    top = _everyone_max(strategy, flat)
    it = iter(top)
    points = {kind: [[x, next(it)] for x, _ in points[kind]]
              for kind in sorted(points)}
    parts = {name: policy.fit_part(*[(w, next(it)) for w, _ in parts[name]])
             for name in sorted(parts)}
    stages = dict(zip(STAGES, [next(it) for _ in STAGES]))
    fb, took, chief_clock = next(it), next(it), next(it)
    sizes_done = [math.prod(s) for s in shapes]
    profile = policy.Profile(
        num_replicas=m, hosts=_hosts(strategy),
        devices=tuple(d.rsplit("device:", 1)[-1] for d in
                      strategy.extended.worker_devices) * (
                          m // len(strategy.extended.worker_devices)),
        tf_version=tf.__version__,
        taken=datetime.datetime.fromtimestamp(
            chief_clock, datetime.timezone.utc).isoformat(timespec="seconds"),
        collectives={kind: policy.fit_collective(pts)
                     for kind, pts in points.items()},
        compute=parts, forward_backward=None if fb < 0 else fb,
        sizes=tuple(sizes_done),
        total_k=sum(policy.allocate(sizes_done, config.density, config.k,
                                    m)),
        seconds=took, points=points, stages=stages,
        sharing=f"{len(strategy.extended.worker_devices)} replica(s) in "
                f"this process; TF intra-op threads "
                f"{tf.config.threading.get_intra_op_parallelism_threads()}")
    profile.validate()
    if path is not None:
        profile.save(path)
    return profile
