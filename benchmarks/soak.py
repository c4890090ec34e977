"""Soak: many steps at scale, resident memory recorded over time (not a test).

    python benchmarks/soak.py --replicas 8 --steps 1000 --out soak.csv

Trains an MLP of >= 25M parameters under SparseSignStrategy with N logical
CPU replicas for the given number of steps (synthetic data, density 1%,
error feedback on), sampling the process's resident set size (RSS, from
/proc/self/status) every --every steps. Prints the RSS at the start of the
measured window, at the end, and the slope of a least-squares line through
the samples after warm-up: a leak shows as a steady positive slope.
"""

from __future__ import annotations

import argparse
import csv
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicas", type=int, default=8)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--density", type=float, default=0.01)
    ap.add_argument("--out", default="soak.csv")
    args = ap.parse_args()
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * args.replicas)
    import keras

    import tf_sparsesign

    strategy = tf_sparsesign.SparseSignStrategy(density=args.density)
    with strategy.scope():
        model = keras.Sequential([
            keras.Input((784,)),
            keras.layers.Dense(4096, activation="relu"),
            keras.layers.Dense(5376, activation="relu"),
            keras.layers.Dense(64)])
        model.compile(optimizer=keras.optimizers.SGD(1e-4), loss="mse")
    params = model.count_params()
    assert params >= 25_000_000, params
    batch = 2 * args.replicas
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch * 16, 784)).astype("float32")
    y = rng.standard_normal((batch * 16, 64)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(
        batch, drop_remainder=True).repeat()
    samples = []
    t0 = time.time()
    out = open(args.out, "w", newline="")  # rows appear as they are taken
    writer = csv.writer(out)
    writer.writerow(["step", "seconds", "rss_mib"])

    class Sampler(keras.callbacks.Callback):
        def on_train_batch_end(self, step, logs=None):
            if step % args.every == 0 or step == args.steps - 1:
                samples.append((step, time.time() - t0, rss_mib()))
                writer.writerow(samples[-1])
                out.flush()
                if step % (args.every * 10) == 0:
                    print(f"step {step}: RSS {samples[-1][2]:.0f} MiB, "
                          f"{samples[-1][1]:.0f} s", flush=True)

    model.fit(ds, steps_per_epoch=args.steps, epochs=1, verbose=0,
              callbacks=[Sampler()])
    out.close()
    after = [(s, r) for s, _, r in samples if s >= args.warmup]
    steps_, rss = np.array([s for s, _ in after]), np.array([r for _, r in
                                                             after])
    slope = float(np.polyfit(steps_, rss, 1)[0]) if len(after) > 1 else 0.0
    print(f"\nparams {params:,}, replicas {args.replicas}, steps "
          f"{args.steps}, {samples[-1][1]:.0f} s")
    print(f"RSS after warm-up (step {after[0][0]}): {after[0][1]:.0f} MiB; "
          f"at the end: {after[-1][1]:.0f} MiB; max {rss.max():.0f} MiB")
    print(f"slope after warm-up: {slope * 1000:.2f} MiB per 1000 steps")


if __name__ == "__main__":
    main()
