"""Timing helpers shared by the calibration and every benchmark script.

Each measured call runs *to completion*: every tensor it returns is read
back (``.numpy()``), so asynchronous work is inside the measurement. Times
on a shared machine drift; compare alternatives measured side by side with
:func:`interleaved_medians`, which calls them in turn so a change in the
machine's load hits all alike.

Example:

>>> import tensorflow as tf
>>> t = median_seconds(lambda: tf.reduce_sum(tf.ones([1000])), repeat=3)
>>> t > 0
True
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import tensorflow as tf


def run_to_completion(fn: Callable):
    """Calls ``fn()`` and reads back every tensor in its result (nested
    structures too); returns the result."""
    out = fn()
    for t in tf.nest.flatten(out):
        if isinstance(t, (tf.Tensor, tf.Variable)):
            t.numpy()
    return out


def seconds(fn: Callable) -> float:
    """Wall seconds of one call of ``fn`` to completion."""
    t0 = time.perf_counter()
    run_to_completion(fn)
    return time.perf_counter() - t0


def median_seconds(fn: Callable, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall seconds of ``repeat`` calls of ``fn`` (to completion),
    after ``warmup`` calls (tracing, first allocations)."""
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    for _ in range(warmup):
        run_to_completion(fn)
    return statistics.median(seconds(fn) for _ in range(repeat))


def interleaved_medians(fns: dict, repeat: int = 5,
                        warmup: int = 1) -> dict:
    """``{name: median seconds}`` of each function in ``fns``, called in
    turn ``repeat`` times after ``warmup`` rounds."""
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    times = {name: [] for name in fns}
    for r in range(warmup + repeat):
        for name, fn in fns.items():
            t = seconds(fn)
            if r >= warmup:
                times[name].append(t)
    return {name: statistics.median(t) for name, t in times.items()}
