"""Writes legacy_wrapper.keras and legacy_expected.npz (run once, by hand).

The files were written by the code of commit 8f0774e (before the package
was reorganised into aggregation/ and integration/); the test
``test_legacy_keras_file_still_loads`` loads them with today's code and
checks that weights, optimizer slots, counters and every replica's
error-feedback memory come back, and that one more step gives the weights
the old code computed.

    python tests/data/make_legacy_keras.py
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = Path(__file__).resolve().parent
REPLICAS = 4


def setup_devices():
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * REPLICAS)


def data():
    rng = np.random.default_rng(42)
    x = rng.standard_normal((48, 6)).astype("float32")
    y = rng.standard_normal((48, 2)).astype("float32")
    return x, y


def main():
    setup_devices()
    import keras

    import tf_sparsesign
    from tf_sparsesign import hooks

    strategy = tf.distribute.MirroredStrategy(
        [f"/cpu:{i}" for i in range(REPLICAS)])
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6,)),
                                  keras.layers.Dense(8, activation="tanh"),
                                  keras.layers.Dense(2)])
        opt = tf_sparsesign.SparseSignOptimizer(
            keras.optimizers.SGD(0.01, momentum=0.9), density=0.2,
            vote="weighted")
        model.compile(optimizer=opt, loss="mse")
    x, y = data()
    model.fit(x[:32], y[:32], batch_size=16, shuffle=False, verbose=0)
    model.save(HERE / "legacy_wrapper.keras")
    agg = hooks.aggregator_of(opt)
    out = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    # Optimizer variables in order (slot names follow the layers' names,
    # which differ between the saving and the loading process).
    out.update({f"opt_{i:02d}": v.numpy()
                for i, v in enumerate(opt.variables)})
    for slot in range(len(agg.memories)):
        out[f"m{slot}"] = np.stack([m.numpy() for m in
                                    agg.memory_values(slot)])
    # One more step with the old code: the weights a resumed run must reach.
    model.fit(x[32:], y[32:], batch_size=16, shuffle=False, verbose=0)
    out.update({f"next_w{i}": w for i, w in enumerate(model.get_weights())})
    np.savez(HERE / "legacy_expected.npz", **out)
    print(sorted(out))


if __name__ == "__main__":
    sys.exit(main())
