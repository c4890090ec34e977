"""S3GD-MV as an optimizer wrapper under any tf.distribute strategy.

    python examples/optimizer_wrapper.py

SparseSignOptimizer wraps any Keras optimizer (here Adam) and works under a
plain MirroredStrategy (or MultiWorkerMirroredStrategy). It saves and loads
with the model like any optimizer.
"""

import os
import tempfile

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

import tf_sparsesign  # noqa: E402

rng = np.random.default_rng(0)
x = rng.standard_normal((2048, 16)).astype("float32")
y = x @ rng.standard_normal((16, 1)).astype("float32")

strategy = tf.distribute.MirroredStrategy()
with strategy.scope():
    model = keras.Sequential([keras.Input((16,)),
                              keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(1)])
    optimizer = tf_sparsesign.SparseSignOptimizer(
        keras.optimizers.Adam(learning_rate=1e-3), density=0.02)
    model.compile(optimizer=optimizer, loss="mse")

model.fit(x, y, batch_size=64, epochs=3, verbose=2)
stats = tf_sparsesign.communication_stats(model.optimizer)
print(f"{stats['steps']} steps, {stats['ratio']:.0f}x fewer bytes than a "
      "dense all-reduce")

path = os.path.join(tempfile.mkdtemp(), "model.keras")
model.save(path)
restored = keras.models.load_model(path)  # custom objects are registered
print("restored optimizer:", type(restored.optimizer).__name__,
      restored.optimizer.sparse_sign_config)
