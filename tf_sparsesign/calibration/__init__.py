"""Calibration: measure this cluster's collectives and this host's compute,
once, inside the real job; the time model (:mod:`tf_sparsesign.policy.
timing`) predicts every option's step time from the profile.

:func:`calibrate` runs on every worker of the job (like ``model.fit``):

1. every collective kind the exchanges use, at fixed sizes, by all
   workers together (:mod:`.collectives`);
2. forward+backward of the model (when a model and a batch are given; else
   a matrix product) by all workers at once, then by one worker per host
   alone: the host's slowdown when its workers share its cores
   (:mod:`.sharing`);
3. each compute part of the step at the model's sizes, by that one worker
   per host (the others wait), times the slowdown (:mod:`.compute`);
4. every worker's numbers combined with one small collective (the slowest
   worker's or host's of each, since every step waits for the slowest),
   fitted, and the same :class:`~tf_sparsesign.policy.Profile` returned on
   every worker.

Bounded by construction: fixed sizes, one warm-up and ``repeat`` timed
calls of each. ``tf-sparsesign calibrate`` is the command-line form.
"""

from __future__ import annotations

import datetime
import math
import time

import tensorflow as tf

from .. import policy
from ..config import SparseSignConfig
from . import collectives as collectives_lib
from . import compute, sharing

#: What is timed by default: the dense baseline and the exchanges that give
#: the same update as one another, with each codec (packed signs only where
#: they are at most twice the int32 codes' size: see :func:`default_options`).
DEFAULT_OPTIONS = ("dense", "allgather/int32", "allgather/rice",
                   "allgather/packed", "sharded/int32", "sharded/rice")


def default_options(n: int, k: int) -> list:
    """:data:`DEFAULT_OPTIONS` for N elements and K entries per step,
    without packed signs where their message (N/20 words) is more than
    twice the int32 codes' (K words): below about 2.5% density they never
    win, and timing them costs the calibration a second."""
    packed_ok = policy.packed_sign_words(n) <= 2 * k
    return [o for o in DEFAULT_OPTIONS
            if o != "allgather/packed" or packed_ok]
#: The calibration's stages, whose seconds the profile keeps.
STAGES = ("collectives", "slowdown", "compute")
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
      options: option names to time (default :func:`default_options`).
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
    shapes = _shapes(model, sizes)
    n = sum(math.prod(s) for s in shapes)
    k = sum(policy.allocate([math.prod(s) for s in shapes], config.density,
                            config.k, m))
    options = [policy.Option.parse(o)
               for o in (options or default_options(n, k))]
    job = sharing.Job(strategy)
    clock = [time.perf_counter()]

    def lap():
        clock.append(time.perf_counter())
        return clock[-1] - clock[-2]

    points = collectives_lib.time_collectives(strategy, repeat)
    stages = [lap()]
    with_model = model is not None and batch is not None
    reference = (compute.forward_backward(strategy, model, batch)
                 if with_model else sharing.matmul_reference())
    slowdown, together = job.slowdown(reference, max(repeat, 5))
    stages.append(lap())
    wanted = compute.measurements(options)
    measured = (compute.time_parts(config, shapes, m, options, sgd, repeat)
                if job.timer else {})
    job.barrier()  # the other workers waited for the timers
    stages.append(lap())
    # The timers' part times, shared as in a step (x slowdown); the slowest
    # host's of each (max over workers), so every worker fits the same.
    flat = [t for kind in sorted(points) for _, t in points[kind]]
    flat += [measured[w][1] * slowdown if w in measured else 0.0
             for w in wanted]
    flat += stages + [together if with_model else -1.0, slowdown,
                      time.perf_counter() - start]
    it = iter(job.max_and_chief_clock(flat))
    points = {kind: [[x, next(it)] for x, _ in points[kind]]
              for kind in sorted(points)}
    seconds = {w: next(it) for w in wanted}
    parts = {}
    for part, scale in wanted:
        work = compute.work_of(config, shapes, m, part, scale)
        parts.setdefault(part, []).append((work, seconds[part, scale]))
    parts = {name: policy.fit_part(*pts) for name, pts in parts.items()}
    stages = dict(zip(STAGES, [next(it) for _ in STAGES]))
    fb, slowdown, took, chief_clock = next(it), next(it), next(it), next(it)
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
        total_k=k,
        seconds=took, points=points, stages=stages,
        sharing=f"{job.on_host} worker process(es) on the timing host, "
                f"{len(strategy.extended.worker_devices)} replica(s) each; "
                f"TF intra-op threads "
                f"{tf.config.threading.get_intra_op_parallelism_threads()}"
                f"; parts timed by one worker per host x slowdown "
                f"{slowdown:.2f} (all its workers at once / one alone)")
    profile.validate()
    if path is not None:
        profile.save(path)
    return profile
