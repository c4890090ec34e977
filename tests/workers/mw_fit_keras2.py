"""One worker of a Keras 2 (tf_keras) multi-worker test job (started by
tests with TF_CONFIG and TF_USE_LEGACY_KERAS=1).

    python mw_fit_keras2.py OUT.npz --mode fit|loop [--steps S]

fit:  tf_keras model.fit under MultiWorkerSparseSignStrategy on the shared
      arrays (tf_keras shards them by data).
loop: SparseSignOptimizer under plain MultiWorkerMirroredStrategy in a
      custom loop where each worker feeds its own known batches.
Writes the final weights, counters and memories (or the error) to OUT.npz.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_sparsesign  # noqa: E402
from tf_sparsesign.integration.routing import aggregator_of  # noqa: E402

BATCH_PER_WORKER = 4
DENSITY = 0.1
LR = 0.01


def model_fn():
    tf.keras.utils.set_random_seed(0)
    return tf.keras.Sequential([tf.keras.Input((5,)),
                                tf.keras.layers.Dense(4, activation="tanh"),
                                tf.keras.layers.Dense(3)])


def arrays(workers, steps):
    rng = np.random.default_rng(1)
    n = workers * BATCH_PER_WORKER * steps
    return (rng.standard_normal((n, 5)).astype(np.float32),
            rng.standard_normal((n, 3)).astype(np.float32))


def loop(strategy, model, opt, x, y, workers, index, steps):
    """Worker w's step-s batch: slice w of global batch s."""
    b = BATCH_PER_WORKER

    @tf.function
    def step(xb, yb):
        def fn(xb, yb):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(xb) - yb))
                loss = loss / workers
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
        strategy.run(fn, args=(xb, yb))

    for s in range(steps):
        lo = s * workers * b + index * b
        step(tf.constant(x[lo:lo + b]), tf.constant(y[lo:lo + b]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--mode", default="fit", choices=["fit", "loop"])
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    assert tf.keras.Model.__module__.startswith("tf_keras")
    cfg = json.loads(os.environ["TF_CONFIG"])
    workers = len(cfg["cluster"]["worker"])
    index = cfg["task"]["index"]
    x, y = arrays(workers, args.steps)
    result = {}
    # Collective timeout: workers starting unevenly on a loaded machine
    # never meet it (a passing job never waits for it); below run_workers'
    # bound, so a real hang still ends with this worker's own error.
    timeout = 300
    try:
        if args.mode == "fit":
            strategy = tf_sparsesign.MultiWorkerSparseSignStrategy(
                density=DENSITY, timeout_seconds=timeout)
        else:
            strategy = tf.distribute.MultiWorkerMirroredStrategy(
                communication_options=tf.distribute.experimental.
                CommunicationOptions(timeout_seconds=timeout))
        with strategy.scope():
            model = model_fn()
            opt = tf.keras.optimizers.SGD(LR)
            if args.mode == "loop":
                opt = tf_sparsesign.SparseSignOptimizer(opt, density=DENSITY)
            model.compile(optimizer=opt, loss="mse")
        if args.mode == "fit":
            model.fit(x, y, batch_size=workers * BATCH_PER_WORKER,
                      shuffle=False, verbose=0)
        else:
            with strategy.scope():
                opt.build(model.trainable_variables)
            loop(strategy, model, opt, x, y, workers, index, args.steps)
        for i, w in enumerate(model.get_weights()):
            result[f"w{i}"] = w
        result["steps"] = np.int64(
            tf_sparsesign.communication_stats(model.optimizer)["steps"])
        agg = aggregator_of(model.optimizer)
        for slot in range(len(agg.state.memories)):
            result[f"m{slot}"] = np.stack(
                [m.numpy() for m in agg.state.memory_values(slot)])
    except Exception as exc:  # reported to the test, which asserts on it
        result["error"] = np.array(f"{type(exc).__name__}: {exc}")
    np.savez(args.out, **result)
    print("WORKER-DONE", index, "error" in result, flush=True)
    sys.stdout.flush()
    os._exit(0 if "error" not in result else 1)


if __name__ == "__main__":
    main()
