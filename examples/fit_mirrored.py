"""S3GD-MV with model.fit on one host: SparseSignStrategy + any optimizer.

    python examples/fit_mirrored.py

Splits the CPU into 4 logical devices so it runs anywhere; on a GPU host
leave out the device set-up and SparseSignStrategy uses all GPUs.
"""

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 4)

import keras  # noqa: E402

import tf_sparsesign  # noqa: E402

rng = np.random.default_rng(0)
x = rng.standard_normal((4096, 32)).astype("float32")
y = (x[:, :4].sum(axis=1) > 0).astype("int32")

strategy = tf_sparsesign.SparseSignStrategy(density=0.01)
with strategy.scope():  # the only change to a MirroredStrategy script
    model = keras.Sequential([
        keras.Input((32,)),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(2),
    ])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True),
                  metrics=["accuracy"])

history = model.fit(x, y, batch_size=128, epochs=5, verbose=2,
                    callbacks=[tf_sparsesign.CommunicationLogger()])
last = {k: v[-1] for k, v in history.history.items()}
print(f"accuracy {last['accuracy']:.3f}; sent {last['comm_bytes_sent']} "
      f"bytes per replica, {last['comm_ratio']:.0f}x fewer than dense")
