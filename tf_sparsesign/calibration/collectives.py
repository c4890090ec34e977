"""Timing the collectives the exchanges launch, on the strategy's real
devices and links: the all-gather of int32 words, the all-to-all of M
buckets, and the SUM all-reduce (the dense baseline's, and the small ones).

Across workers each is launched exactly as the library launches it
(:data:`tf_sparsesign.integration._patches.collectives.CROSS_WORKER`: one
static-shape collective per local device with the strategy's keys); the
all-reduce goes through the replica context's ``all_reduce``, Keras' own
path for the dense baseline. On one host the exchanges stack and transpose
instead (:data:`~tf_sparsesign.aggregation.exchange.collectives.LOCAL`),
which is what is timed there. Each is launched eagerly (no tracing; the
same op as in the step's graph).
"""

from __future__ import annotations

import tensorflow as tf

from ..aggregation.exchange.collectives import LOCAL
from ..integration._patches.collectives import CROSS_WORKER
from ..timing import median_seconds

#: Bytes per worker each kind is timed at: fixed, so every worker launches
#: the same collectives and the time is bounded. The all-to-all's sizes
#: are rounded to whole buckets of int32 words (at least one word each).
SIZES = {"all_gather": (4, 64 * 1024, 1024 * 1024),
         "all_to_all": (4, 64 * 1024, 1024 * 1024),
         "all_reduce": (4, 1024 * 1024, 16 * 1024 * 1024)}


def _rows(devices, shape, dtype):
    """One tensor of ``shape`` on each local device."""
    out = []
    for device in devices:
        with tf.device(device):
            out.append(tf.fill(shape, tf.constant(1, dtype)))
    return out


# Each launcher returns ``(call, bytes per worker)``; ``call()`` launches one
# collective eagerly (no tracing: the op is the one the step's graph runs,
# and its inputs exist before the clock starts).

def _all_gather(strategy, nbytes, one_host):
    words = max(1, nbytes // 4)
    rows = _rows(strategy.extended.worker_devices, [1, words], tf.int32)
    if one_host:
        return (lambda: LOCAL.gather([r[0] for r in rows])), 4 * words
    return (lambda: CROSS_WORKER.all_gather(strategy, rows)), 4 * words


def _all_to_all(strategy, nbytes, one_host):
    m = strategy.num_replicas_in_sync
    words = max(1, nbytes // (4 * m))
    buckets = _rows(strategy.extended.worker_devices, [m, words], tf.int32)
    if one_host:
        return (lambda: LOCAL.all_to_all(buckets)), 4 * m * words
    return (lambda: CROSS_WORKER.all_to_all(strategy, buckets)), \
        4 * m * words


def _all_reduce(strategy, nbytes, one_host):
    n = max(1, nbytes // 4)
    devices = strategy.extended.worker_devices
    if not one_host:  # the launcher's all-reduce: the dense path's op
        (t,) = _rows(devices[:1], [n], tf.float32)
        return (lambda: CROSS_WORKER.all_reduce(strategy, t, len(devices)),
                4 * n)

    def replica():
        t = tf.fill([n], 1.0)
        return tf.distribute.get_replica_context().all_reduce("sum", t)[:1]

    return (lambda: strategy.experimental_local_results(
        strategy.run(replica))), 4 * n


LAUNCH = {"all_gather": _all_gather, "all_to_all": _all_to_all,
          "all_reduce": _all_reduce}


def time_collectives(strategy, repeat: int = 3) -> dict:
    """``{kind: [[bytes, median seconds], ...]}`` for every kind and size
    of :data:`SIZES` (each after one warm-up call: connections, buffers),
    identical calls in the same order on every worker."""
    one_host = (len(strategy.extended.worker_devices) ==
                strategy.num_replicas_in_sync)
    points = {}
    for kind, sizes in SIZES.items():
        points[kind] = []
        for nbytes in sizes:
            run, actual = LAUNCH[kind](strategy, nbytes, one_host)
            points[kind].append([actual, median_seconds(run, repeat)])
    return points
