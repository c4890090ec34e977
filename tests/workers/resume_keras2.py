"""Keras 2 (tf_keras) single-host training that can be interrupted and
resumed with tf_keras' own BackupAndRestore (tests; TF_USE_LEGACY_KERAS=1).

    python resume_keras2.py OUT.npz [--backup DIR] [--die-at EPOCH:BATCH]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--backup")
ap.add_argument("--die-at")
args = ap.parse_args()

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 4)
tf.config.experimental.enable_op_determinism()

import tf_keras  # noqa: E402

import tf_sparsesign  # noqa: E402
from tf_sparsesign.integration.routing import aggregator_of  # noqa: E402

assert tf.keras.Model is tf_keras.Model
tf_keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.standard_normal((256, 6)).astype("float32")
y = rng.standard_normal((256, 2)).astype("float32")

strategy = tf_sparsesign.SparseSignStrategy(density=0.2)
with strategy.scope():
    model = tf.keras.Sequential([tf.keras.Input((6,)),
                                 tf.keras.layers.Dense(8, activation="tanh"),
                                 tf.keras.layers.Dense(2)])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.01, momentum=0.9),
                  loss="mse")

callbacks = []
if args.backup:
    callbacks.append(tf.keras.callbacks.BackupAndRestore(args.backup))
if args.die_at:
    die_epoch, die_batch = map(int, args.die_at.split(":"))

    class Die(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == die_epoch and batch == die_batch:
                os._exit(7)  # a crash mid-epoch: nothing is flushed

    callbacks.append(Die())

model.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0,
          callbacks=callbacks)
agg = aggregator_of(model.optimizer)
result = {f"w{i}": w for i, w in enumerate(model.get_weights())}
for i, v in enumerate(model.optimizer.variables):
    result[f"opt{i}"] = v.numpy()
for slot in range(len(agg.state.memories)):
    result[f"m{slot}"] = np.stack([m.numpy() for m in
                                   agg.state.memory_values(slot)])
np.savez(args.out, **result)
