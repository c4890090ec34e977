"""One worker of a multi-worker test job (started by tests with TF_CONFIG).

    python mw_fit.py OUT.npz --mode fit|loop|die [--density D] [--steps S]
                     [--timeout T] [--wrapper] [--vote V] [--flipper R]

fit:  model.fit on the shared arrays (Keras shards them by data).
loop: a custom loop where each worker feeds its own known batches.
die:  like fit, but the worker with index 1 exits abruptly after 2 steps.
Writes the final weights (and the error, if any) to OUT.npz.
"""

import argparse
import json
import os
import sys
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

import tf_sparsesign  # noqa: E402
from tf_sparsesign.integration.routing import aggregator_of  # noqa: E402

BATCH_PER_WORKER = 4


def model_fn():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((5,)),
                             keras.layers.Dense(4, activation="tanh"),
                             keras.layers.Dense(3)])


def arrays(workers, steps):
    """A learnable regression (a linear map plus noise), so that honest
    workers' gradients agree in sign (vote="fd" reads that)."""
    rng = np.random.default_rng(1)
    n = workers * BATCH_PER_WORKER * steps
    x = rng.standard_normal((n, 5)).astype(np.float32)
    y = x @ rng.standard_normal((5, 3)) + 0.1 * rng.standard_normal((n, 3))
    return x, y.astype(np.float32)


class StepClock:
    """When this worker last finished a training step (wall clock)."""

    last = None

    @classmethod
    def callback(cls):
        return keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs: setattr(
                cls, "last", time.time()))


def flipper(replica):
    """The sign-flipping adversary at ``replica``, or None."""
    if replica is None:
        return None
    from tf_sparsesign.experiments import Adversary
    return Adversary("signflip", replicas=(replica,))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--mode", default="fit",
                    choices=["fit", "loop", "die", "backup"])
    ap.add_argument("--backup-dir", help="backup mode: BackupAndRestore dir")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--die-at", help="backup mode: worker 1 exits at "
                    "EPOCH:BATCH")
    ap.add_argument("--density", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=3)
    # The collective timeout: generous, so that workers starting or
    # checkpointing unevenly on a loaded machine never meet it by accident
    # (a passing job never waits for it); below run_workers' bound, so a
    # real hang still ends with this worker's own error.
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--error-feedback-worker1", choices=["on", "off"],
                    default="on", help="a mismatched setting on worker 1")
    ap.add_argument("--wrapper", action="store_true",
                    help="SparseSignOptimizer under plain MWMS (custom loop)")
    ap.add_argument("--aggregation", default="allgather")
    ap.add_argument("--wire", default="int32")
    ap.add_argument("--shard-capacity", type=float, default=1.25)
    ap.add_argument("--error-feedback", choices=["on", "off"], default="on")
    ap.add_argument("--vote", default="plain")
    ap.add_argument("--accumulation", type=int, default=None,
                    help="the optimizer's gradient_accumulation_steps")
    ap.add_argument("--worker-momentum", default="none")
    ap.add_argument("--flipper", type=int, default=None,
                    help="replica that sends inverted signs (the "
                    "experiments' Adversary('signflip'))")
    args = ap.parse_args()
    cfg = json.loads(os.environ["TF_CONFIG"])
    workers = len(cfg["cluster"]["worker"])
    index = cfg["task"]["index"]
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=args.timeout)
    x, y = arrays(workers, args.steps)
    result = {}
    t0 = time.time()
    try:
        if args.wrapper:
            strategy = tf.distribute.MultiWorkerMirroredStrategy(
                communication_options=options)
        else:
            ef = args.error_feedback == "on" and not (
                index == 1 and args.error_feedback_worker1 == "off")
            strategy = tf_sparsesign.MultiWorkerSparseSignStrategy(
                density=args.density, error_feedback=ef,
                aggregation=args.aggregation, wire=args.wire,
                shard_capacity=args.shard_capacity, vote=args.vote,
                worker_momentum=args.worker_momentum,
                adversary=flipper(args.flipper),
                timeout_seconds=args.timeout)
        with strategy.scope():
            model = model_fn()
            if args.wrapper:
                opt = tf_sparsesign.SparseSignOptimizer(
                    keras.optimizers.SGD(0.01), density=args.density,
                    aggregation=args.aggregation, wire=args.wire)
            else:
                opt = keras.optimizers.SGD(
                    0.01, gradient_accumulation_steps=args.accumulation)
            model.compile(optimizer=opt, loss="mse")
        if args.mode == "backup":
            callbacks = []
            if args.backup_dir:
                callbacks.append(tf_sparsesign.BackupAndRestore(
                    args.backup_dir))
            if args.die_at and index == 1:
                die_epoch, die_batch = map(int, args.die_at.split(":"))

                class DieAt(keras.callbacks.Callback):
                    def on_epoch_begin(self, epoch, logs=None):
                        self.epoch = epoch

                    def on_train_batch_end(self, batch, logs=None):
                        if self.epoch == die_epoch and batch == die_batch:
                            os._exit(3)
                callbacks.append(DieAt())
            model.fit(x, y, batch_size=workers * BATCH_PER_WORKER,
                      epochs=args.epochs, shuffle=False, verbose=0,
                      callbacks=callbacks)
        elif args.mode in ("fit", "die"):
            callbacks = []
            if args.mode == "die":
                callbacks.append(StepClock.callback())
            if args.mode == "die" and index == 1:
                class Die(keras.callbacks.Callback):
                    def on_train_batch_end(self, batch, logs=None):
                        if batch == 1:
                            os._exit(3)  # abrupt: no goodbye to peers
                callbacks.append(Die())
            model.fit(x, y, batch_size=workers * BATCH_PER_WORKER,
                      epochs=1 if args.mode == "fit" else 1000,
                      shuffle=False, verbose=0, callbacks=callbacks)
        else:
            with strategy.scope():
                opt.build(model.trainable_variables)
            # Worker w's step-s batch: slice w of global batch s.
            b = BATCH_PER_WORKER

            @tf.function
            def step(xb, yb):
                def fn(xb, yb):
                    with tf.GradientTape() as tape:
                        loss = keras.losses.MeanSquaredError()(yb, model(xb))
                    grads = tape.gradient(loss, model.trainable_variables)
                    opt.apply_gradients(zip(grads,
                                            model.trainable_variables))
                strategy.run(fn, args=(xb, yb))

            for s in range(args.steps):
                lo = s * workers * b + index * b
                step(tf.constant(x[lo:lo + b]), tf.constant(y[lo:lo + b]))
        for i, w in enumerate(model.get_weights()):
            result[f"w{i}"] = w
        stats = tf_sparsesign.accounting.communication_stats(model.optimizer)
        result["bytes_sent"] = np.int64(stats["bytes_sent"])
        result["exchanges"] = np.int64(stats["steps"])
        result["overflow"] = np.int64(stats.get("overflow", 0))
        result["option"] = np.array(stats.get("auto_exchange",
                                              stats["exchange"]))
        agg = aggregator_of(model.optimizer)
        if args.vote == "fd":
            result["fd_weights"] = agg.exchange.rule.weights().numpy()
        for slot in range(len(agg.state.memories)):
            result[f"m{slot}"] = np.stack(
                [m.numpy() for m in agg.state.memory_values(slot)])
    except Exception as exc:  # reported to the test, which asserts on it
        result["error"] = np.array(f"{type(exc).__name__}: {exc}")
        if StepClock.last is not None:  # how long the failing step ran
            result["stuck_seconds"] = np.float64(time.time() - StepClock.last)
        traceback.print_exc()  # into the worker's log, for the test
    result["seconds"] = np.float64(time.time() - t0)
    np.savez(args.out, **result)
    print("WORKER-DONE", index, "error" in result, flush=True)
    sys.stdout.flush()
    os._exit(0 if "error" not in result else 1)


if __name__ == "__main__":
    main()
