"""Step time of SparseSignStrategy vs dense MirroredStrategy (not a test).

    python benchmarks/step_time.py [--replicas 2] [--steps 10] [--rounds 4]

One host, no network shaping: measures what the compression itself costs
(encode, gather, vote) against the dense all-reduce, for a ~1M and a ~10M
parameter MLP, measured side by side in one run, in alternating rounds.
Prints medians and the ratio ours / dense (goals: <= 1.3x at ~1M, <= 1.15x
at ~10M), and the same for shadow mode (``shadow=True``: the dense step
plus the sparse step watched beside it; goal <= 1.3x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

MODELS = {"~1M": (784, [1024, 256], 10), "~10M": (784, [4096, 1536], 10)}


def build(spec):
    import keras

    inputs, hidden, classes = spec
    layers = [keras.Input((inputs,))]
    layers += [keras.layers.Dense(h, activation="relu") for h in hidden]
    layers += [keras.layers.Dense(classes)]
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.SGD(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))
    return model


class StepTimer:
    def __init__(self):
        import keras

        class _Timer(keras.callbacks.Callback):
            def on_train_batch_begin(cb, batch, logs=None):
                cb.t0 = time.perf_counter()

            def on_train_batch_end(cb, batch, logs=None):
                self.times.append(time.perf_counter() - cb.t0)

        self.times = []
        self.callback = _Timer()


def interleaved_medians(strategies, spec, steps, batch, rounds):
    """Median step time of each strategy's model, trained in alternating
    rounds of ``steps`` steps (so a change in the machine's load hits all
    alike); the first round is warm-up."""
    models = {}
    for name, strategy in strategies.items():
        with strategy.scope():
            models[name] = build(spec)
    rng = np.random.default_rng(0)
    n = batch * steps
    x = rng.standard_normal((n, spec[0])).astype("float32")
    y = rng.integers(0, spec[2], n).astype("int32")
    times = {name: [] for name in models}
    for r in range(rounds + 1):
        for name, model in models.items():
            timer = StepTimer()
            model.fit(x, y, batch_size=batch, epochs=1, shuffle=False,
                      verbose=0, callbacks=[timer.callback])
            if r:
                times[name] += timer.times[1:]
    params = next(iter(models.values())).count_params()
    return {name: statistics.median(t) for name, t in times.items()}, params


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10,
                    help="steps per round")
    ap.add_argument("--rounds", type=int, default=4,
                    help="alternating rounds per strategy (after warm-up)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--density", type=float, default=0.01)
    args = ap.parse_args()
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * args.replicas)
    import tf_sparsesign

    assert tf_sparsesign.ops.is_compiled()
    devices = [f"/cpu:{i}" for i in range(args.replicas)]
    print(f"{args.replicas} replicas on {os.cpu_count()} CPUs, global batch "
          f"{args.batch}, density {args.density:.1%}\n")
    print("| model | params | dense ms/step | S3GD-MV ms/step | ratio | "
          "shadow ms/step | shadow ratio |")
    print("|---|---|---|---|---|---|---|")
    # One stock MirroredStrategy for every model: several in one process
    # would reuse collective keys upstream (our strategies take their own).
    mirrored = tf.distribute.MirroredStrategy(devices)
    for name, spec in MODELS.items():
        medians, params = interleaved_medians(
            {"dense": mirrored,
             "ours": tf_sparsesign.SparseSignStrategy(
                 density=args.density, devices=devices),
             "shadow": tf_sparsesign.SparseSignStrategy(
                 density=args.density, shadow=True, devices=devices)},
            spec, args.steps, args.batch, args.rounds)
        dense, ours, shadow = (medians["dense"], medians["ours"],
                               medians["shadow"])
        print(f"| {name} | {params:,} | {dense * 1e3:.1f} | "
              f"{ours * 1e3:.1f} | {ours / dense:.2f}x | "
              f"{shadow * 1e3:.1f} | {shadow / dense:.2f}x |", flush=True)

if __name__ == "__main__":
    main()
