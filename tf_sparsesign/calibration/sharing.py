"""The job's workers during a calibration: barriers, who times the compute
parts on each host, how much slower a part runs when all of a host's
workers compute at once, and one profile from everyone's numbers.

Timing every part on every worker at once would measure the cores shared
as in training, but costs each host M_host times the work (and the
calibration's time). Instead one worker per host (the *timer*: the lowest
process id among the workers with the same host name) times the parts
while the others wait, and the times are multiplied by the host's
*slowdown*: a reference computation (the model's forward+backward, else a
matrix product) timed by all the host's workers at once over the same
timed by the timer alone. In a step the workers compute in lockstep, so
the shared slowdown is what each part suffers.
"""

from __future__ import annotations

import os
import socket
import time
import zlib

import tensorflow as tf

from ..timing import median_seconds, run_to_completion


def _replica_results(strategy, fn):
    """``fn`` on every local replica (``strategy.run``), in a
    ``tf.function``; returns a callable giving this worker's results."""
    @tf.function
    def run():
        return strategy.experimental_local_results(strategy.run(fn))

    return lambda: [t.numpy() for t in run()]


class Job:
    """The workers of ``strategy``'s job, as the calibration sees them."""

    def __init__(self, strategy):
        self.strategy = strategy
        self._barrier = _replica_results(
            strategy, lambda: tf.distribute.get_replica_context().all_reduce(
                "sum", tf.ones([1])))
        host = zlib.crc32(socket.gethostname().encode()) & 0x7FFFFFFF
        rows = self.gather([float(host), float(os.getpid())])
        mine = [r for r in rows if r[0] == host]
        #: This process times the compute parts of its host.
        self.timer = min(r[1] for r in mine) == os.getpid()
        #: Worker processes on this host (replicas on it, over this
        #: worker's local replicas).
        self.on_host = len(mine) // len(strategy.extended.worker_devices)

    def barrier(self) -> None:
        """Returns once every replica called it (one tiny all-reduce)."""
        self._barrier()

    def gather(self, values: list) -> list:
        """Every replica's ``values`` (one all-gather, float64)."""
        mine = tf.constant(values, tf.float64)

        def gather():
            return tf.distribute.get_replica_context().all_gather(
                mine[None], axis=0)

        rows = self.strategy.experimental_local_results(
            self.strategy.run(gather))[0]
        return [list(map(float, r)) for r in rows.numpy()]

    def max_and_chief_clock(self, values: list) -> list:
        """The maximum of each number over all replicas, and the chief's
        clock as the last entry."""
        rows = self.gather(list(values) + [time.time()])
        return [max(r[i] for r in rows) for i in range(len(values))] + [
            rows[0][-1]]

    def slowdown(self, reference, repeat: int = 3) -> tuple:
        """``(slowdown, seconds together)``: ``reference()`` (traced and
        warmed first, so that every worker starts at once) timed by every
        worker at once, then by the timers alone (the others wait);
        ``together / alone`` on a timer, 1 elsewhere (at least 1)."""
        run_to_completion(reference)
        self.barrier()
        together = median_seconds(reference, repeat, warmup=0)
        self.barrier()
        alone = (median_seconds(reference, repeat, warmup=0) if self.timer
                 else None)
        self.barrier()
        if alone is None or self.on_host <= 1:
            return 1.0, together
        return max(1.0, together / alone), together


def matmul_reference(n: int = 768):
    """A compute-bound reference (``n x n`` matrix products), for a
    calibration without a model."""
    a = tf.random.stateless_normal([n, n], [3, 0])

    @tf.function
    def run():
        return tf.reduce_sum(tf.linalg.matmul(a, a))

    return run
