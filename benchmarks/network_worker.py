"""One worker of the network benchmarks (runs inside its namespace, started
by ``network.py`` / ``timemodel.py`` through
:class:`tf_sparsesign.experiments.cluster.LocalCluster`; imports
TensorFlow).

``train``: the same custom training loop for every method (``strategy.run``
of forward/backward + ``optimizer.apply_gradients``, Keras SGD) on the same
MLP and synthetic data (worker ``i``'s batch seeded by ``i``); dense is
plain ``MultiWorkerMirroredStrategy``, ours
``tf_sparsesign.MultiWorkerSparseSignStrategy``. (A custom loop for both:
plain Keras 3.15 ``fit`` fails under MWMS, keras-team/keras#20585.) The
driver reads the interface counters between the "warm" and "go" files and
after "done"; afterwards, counters read, the worker times the parts of its
step alone (:func:`tf_sparsesign.calibration.compute.time_option`: the
library's own parts at the real sizes) and writes ``result-<i>.json``.

``calibrate``: the same strategy, model and batch, then
:func:`tf_sparsesign.calibrate`; the profile goes to ``--profile``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

INPUTS, CLASSES = 784, 10
POLL_SECONDS = 0.025


def parse_args(argv):
    """The worker's flags (the driver passes them)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["train", "calibrate"])
    ap.add_argument("--index", type=int, required=True)
    ap.add_argument("--sync", type=Path, required=True)
    ap.add_argument("--method", choices=["dense", "ours"], default="ours")
    ap.add_argument("--density", type=float, default=0.01)
    ap.add_argument("--wire", default="int32")
    ap.add_argument("--aggregation", default="allgather")
    ap.add_argument("--hidden", default="4096,2048")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--profile", type=Path, default=None)
    ap.add_argument("--options", default="")
    return ap.parse_args(argv)


def deadline_left(end: float) -> float:
    """Seconds until ``end`` (a ``time.monotonic`` value)."""
    return end - time.monotonic()


def make_strategy(args, tf, tf_sparsesign):
    """Dense: plain MWMS; ours: the sparse-sign strategy (``--aggregation
    sharded-topk`` = sharded with the top-K downlink)."""
    if args.method == "dense":
        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=float(args.timeout))
        return tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=options)
    aggregation, _, downlink = args.aggregation.partition("-")
    return tf_sparsesign.MultiWorkerSparseSignStrategy(
        density=args.density, wire=args.wire, aggregation=aggregation,
        downlink=downlink or "exact", timeout_seconds=float(args.timeout))


def build_mlp(keras, hidden):
    """784 -> hidden -> 10 (ReLU), the same initial weights everywhere."""
    keras.utils.set_random_seed(0)
    layers = [keras.Input((INPUTS,))]
    layers += [keras.layers.Dense(h, activation="relu") for h in hidden]
    layers += [keras.layers.Dense(CLASSES)]
    return keras.Sequential(layers)


def synthetic_batch(np, index, batch):
    """Worker ``index``'s batch (seeded by the index)."""
    rng = np.random.default_rng(1000 + index)
    return (rng.standard_normal((batch, INPUTS)).astype(np.float32),
            rng.integers(0, CLASSES, batch).astype(np.int32))


def signal_and_wait(sync: Path, mine: str, index: int, wanted: str,
                    end: float) -> None:
    """Writes ``<mine>-<index>`` and waits for the driver's ``wanted``."""
    (sync / f"{mine}-{index}").touch()
    while not (sync / wanted).exists():
        if deadline_left(end) <= 0:
            raise TimeoutError(f"worker {index}: no '{wanted}' from driver")
        time.sleep(POLL_SECONDS)


def option_of(args):
    """The :class:`tf_sparsesign.policy.Option` this worker runs."""
    from tf_sparsesign import policy

    if args.method == "dense":
        return policy.timing.DENSE
    aggregation, _, downlink = args.aggregation.partition("-")
    return policy.Option(aggregation, args.wire, downlink or "exact")


def main(argv) -> int:
    args = parse_args(argv)
    end = time.monotonic() + args.timeout

    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    import keras

    import tf_sparsesign

    hidden = [int(h) for h in args.hidden.split(",") if h]
    strategy = make_strategy(args, tf, tf_sparsesign)
    with strategy.scope():
        model = build_mlp(keras, hidden)
        optimizer = keras.optimizers.SGD(1e-3)
        optimizer.build(model.trainable_variables)
    x, y = synthetic_batch(np, args.index, args.batch)
    if args.mode == "calibrate":
        result = calibrate(args, tf_sparsesign, strategy, model, x, y)
    else:
        result = train(args, end, tf, tf_sparsesign, strategy, model,
                       optimizer, x, y)
    (args.sync / f"result-{args.index}.json").write_text(json.dumps(result))
    print("worker", args.index, json.dumps(result), flush=True)
    # Skip TF's interpreter teardown (can hang on collective threads).
    os._exit(0)


def calibrate(args, tf_sparsesign, strategy, model, x, y) -> dict:
    """Times this job (:func:`tf_sparsesign.calibrate`), saves the profile
    (every worker writes the same one)."""
    options = [o for o in args.options.split(",") if o] or None
    t0 = time.perf_counter()
    profile = tf_sparsesign.calibrate(strategy, model, (x, y),
                                      path=args.profile, options=options)
    return {"calibrate_s": time.perf_counter() - t0,
            "profile_seconds": profile.seconds}


def train(args, end, tf, tf_sparsesign, strategy, model, optimizer, x, y):
    """Warm-up steps, the measured steps between the driver's counter
    readings, then the parts of the step timed alone."""
    @tf.function
    def train_step(xb, yb):
        def replica_step(xb, yb):
            with tf.GradientTape() as tape:
                logits = model(xb, training=True)
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(yb, logits))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss
        return strategy.run(replica_step, args=(xb, yb))

    def one_step() -> float:
        t0 = time.perf_counter()
        loss = train_step(x, y)
        strategy.experimental_local_results(loss)[0].numpy()  # wait
        return time.perf_counter() - t0

    for _ in range(args.warmup):
        one_step()
    sent_before = library_bytes_sent(tf_sparsesign, optimizer)
    signal_and_wait(args.sync, "warm", args.index, "go", end)
    times = [one_step() for _ in range(args.steps)]
    sent = library_bytes_sent(tf_sparsesign, optimizer) - sent_before
    params = sum(math.prod(int(d) for d in v.shape)
                 for v in model.trainable_variables)
    workers = strategy.num_replicas_in_sync
    if args.method == "dense":
        sent = tf_sparsesign.policy.dense_ring_bytes(params, workers) * \
            args.steps
    signal_and_wait(args.sync, "done", args.index, "read", end)
    # Counters are read: local timing only from here on.
    return {"params": params, "step_times_s": times,
            "step_median_s": statistics.median(times),
            "library_bytes": sent,
            "breakdown": breakdown(args, strategy, model, x, y)}


def breakdown(args, strategy, model, x, y) -> dict:
    """Median seconds of forward+backward and of each compute part of this
    worker's option, with the library's own parts at the real sizes."""
    from tf_sparsesign.calibration import compute
    from tf_sparsesign.config import SparseSignConfig
    from tf_sparsesign.timing import median_seconds

    shapes = [tuple(int(d) for d in v.shape)
              for v in model.trainable_variables]
    config = getattr(strategy, "sparse_sign_config", SparseSignConfig())
    parts = compute.time_option(config, shapes,
                                strategy.num_replicas_in_sync,
                                option_of(args))
    parts["forward_backward"] = median_seconds(
        compute.forward_backward(strategy, model, (x, y)))
    return parts


def library_bytes_sent(tf_sparsesign, optimizer) -> int:
    """``bytes_sent`` of the optimizer's communication counters (0 for
    dense)."""
    stats = tf_sparsesign.accounting.communication_stats(optimizer)
    return 0 if stats is None else int(stats["bytes_sent"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
