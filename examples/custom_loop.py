"""S3GD-MV in a custom training loop: strategy.run + apply_gradients.

    python examples/custom_loop.py
"""

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

import tf_sparsesign  # noqa: E402

rng = np.random.default_rng(0)
x = rng.standard_normal((1024, 8)).astype("float32")
y = x @ rng.standard_normal((8, 1)).astype("float32")

strategy = tf.distribute.MirroredStrategy()
with strategy.scope():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    optimizer = tf_sparsesign.SparseSignOptimizer(
        keras.optimizers.SGD(learning_rate=1e-2), density=0.25)
    optimizer.build(model.trainable_variables)  # build under the scope

dataset = strategy.experimental_distribute_dataset(
    tf.data.Dataset.from_tensor_slices((x, y)).batch(64))


@tf.function
def train_step(xb, yb):
    def step(xb, yb):
        with tf.GradientTape() as tape:
            # Keras losses divide by the number of replicas themselves.
            loss = keras.losses.MeanSquaredError()(yb, model(xb))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss
    losses = strategy.run(step, args=(xb, yb))
    return strategy.reduce("SUM", losses, axis=None)


for epoch in range(5):
    for xb, yb in dataset:
        loss = train_step(xb, yb)
    print(f"epoch {epoch}: loss {float(loss):.4f}")
