"""signSGD-MV (``density=1.0, error_feedback=False``): packed signs vs the
int32 path it replaced, side by side in one run (not a test).

    python benchmarks/signsgd.py --workers 8 --steps 30

Before: every replica ran the top-K encode op with ``k = N`` (a selection
over every coordinate) and sent ``N`` int32 codes (32 bits per
coordinate); the vote read ``[M, N]`` codes. Now: no selection, every
coordinate is one ternary digit (1.6 bits), the vote reads the packed rows
one at a time. Two measurements per model size, each alternating the two
paths round by round so machine load hits both alike:

* **aggregation**: the encode (every replica's message) and the vote
  alone, on the real message sizes (``M`` random gradients with 30% exact
  zeros), in one ``tf.function`` each;
* **step**: a whole training step under ``SparseSignStrategy`` over ``M``
  logical CPU devices (custom loop as in ``tf-sparsesign sweep``: forward,
  backward, encode, gather, vote, SGD).

Prints median milliseconds and the ratio int32 / packed, plus the message
bytes from the accounting.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

#: MLPs (inputs, hidden, classes): the published sweep's N = 101,770, ~1M.
MODELS = {"101,770": (784, 128, 10), "~1M": (784, 1262, 10)}


def use_int32_path(on: bool) -> None:
    """Makes signSGD-MV build as before (top-K over every coordinate,
    int32 codes) or as now (the default parts)."""
    from tf_sparsesign.aggregation import registry

    use_int32_path.saved = getattr(use_int32_path, "saved", (
        registry.EVERY_SIGN, registry.EVERY_SIGN_WIRE))
    registry.EVERY_SIGN, registry.EVERY_SIGN_WIRE = (
        (registry.METHODS["sign_vote"], "int32") if on else
        use_int32_path.saved)


def aggregation_fns(n: int, m: int, packed: bool):
    """(encode all M messages, vote) as tf.functions for one path."""
    from tf_sparsesign import ops
    from tf_sparsesign.aggregation.codec.packed_signs import PackedSignsCodec
    from tf_sparsesign.aggregation.select.every_sign import EverySign

    codec, every = PackedSignsCodec(n, n, False), EverySign()

    @tf.function
    def encode(grads):
        if packed:
            return tf.stack([codec.encode(every.select(g, n, 0, False).codes)
                             for g in tf.unstack(grads)])
        return tf.stack([ops.sparse_sign_encode(g, n)
                         for g in tf.unstack(grads)])

    @tf.function
    def vote(rows):
        return (ops.packed_signs_vote(rows, n) if packed else
                ops.majority_vote(rows, n))

    return encode, vote


def time_aggregation(n, m, rounds):
    rng = np.random.default_rng(0)
    g = rng.standard_normal((m, n)).astype(np.float32)
    g[rng.random((m, n)) < 0.3] = 0.0
    grads = tf.constant(g)
    fns = {p: aggregation_fns(n, m, p) for p in (False, True)}
    rows = {p: fns[p][0](grads) for p in fns}
    np.testing.assert_array_equal(fns[True][1](rows[True]).numpy(),
                                  fns[False][1](rows[False]).numpy())
    times = {(p, part): [] for p in fns for part in ("encode", "vote")}
    for _ in range(rounds):
        for p in (False, True):
            for part, fn, arg in (("encode", fns[p][0], grads),
                                  ("vote", fns[p][1], rows[p])):
                t0 = time.perf_counter()
                fn(arg).numpy()
                times[(p, part)].append(time.perf_counter() - t0)
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


def make_step(spec, devices, lr=1e-3):
    import keras

    import tf_sparsesign

    inputs, hidden, classes = spec
    strategy = tf_sparsesign.SparseSignStrategy(
        1.0, error_feedback=False, devices=devices)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((inputs,)),
                                  keras.layers.Dense(hidden,
                                                     activation="relu"),
                                  keras.layers.Dense(classes)])
        opt = keras.optimizers.SGD(lr)
        opt.build(model.trainable_variables)
    rng = np.random.default_rng(1)
    x = tf.constant(rng.random((64 * len(devices), inputs), np.float32))
    y = tf.constant(rng.integers(0, classes, 64 * len(devices)))
    dist = strategy.experimental_distribute_values_from_function(
        lambda ctx: (x[64 * ctx.replica_id_in_sync_group:][:64],
                     y[64 * ctx.replica_id_in_sync_group:][:64]))

    def replica(xy):
        xb, yb = xy
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                yb, model(xb, training=True))) / len(devices)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    @tf.function
    def step():
        return strategy.reduce("SUM", strategy.run(replica, (dist,)),
                               axis=None)

    return step, opt


def time_steps(spec, devices, steps):
    from tf_sparsesign import communication_stats

    paths = {}
    for packed in (False, True):
        use_int32_path(not packed)
        paths[packed] = make_step(spec, devices)
        use_int32_path(False)
        paths[packed][0]().numpy()                    # trace + warm-up
    times = {p: [] for p in paths}
    for _ in range(steps):
        for p, (step, _) in paths.items():
            t0 = time.perf_counter()
            step().numpy()
            times[p].append(time.perf_counter() - t0)
    nbytes = {p: communication_stats(opt)["message_bytes"]
              for p, (_, opt) in paths.items()}
    return {p: 1e3 * statistics.median(t) for p, t in times.items()}, nbytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * args.workers)
    devices = [f"/cpu:{i}" for i in range(args.workers)]
    m = args.workers
    print(f"M = {m} replicas (logical CPUs), medians of {args.steps} "
          "rounds, int32 and packed alternating\n")
    print("| N | int32 encode ms | packed encode ms | x | int32 vote ms | "
          "packed vote ms | x | int32 step ms | packed step ms | x | "
          "int32 message B | packed message B | x |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, spec in MODELS.items():
        inputs, hidden, classes = spec
        n = inputs * hidden + hidden + hidden * classes + classes
        agg = time_aggregation(n, m, args.steps)
        step, nbytes = time_steps(spec, devices, args.steps)
        e0, e1 = agg[(False, "encode")], agg[(True, "encode")]
        v0, v1 = agg[(False, "vote")], agg[(True, "vote")]
        print(f"| {n:,} | {e0:.2f} | {e1:.2f} | {e0 / e1:.1f}x | {v0:.2f} | "
              f"{v1:.2f} | {v0 / v1:.1f}x | {step[False]:.1f} | "
              f"{step[True]:.1f} | {step[False] / step[True]:.1f}x | "
              f"{nbytes[False]:,} | {nbytes[True]:,} | "
              f"{nbytes[False] / nbytes[True]:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
