"""Train with S3GD-MV, then export a plain SavedModel for TF Serving.

    python examples/export_for_serving.py [--out /tmp/serving]

Writes the TF Serving layout <out>/<model name>/<version>/ (here
/tmp/serving/sparsesign_mlp/1). The exported graph holds inference ops
only: no tf_sparsesign op and no optimizer, so TF Serving (or any Python
process that never imports tf_sparsesign) loads it. Try:

    saved_model_cli show --dir /tmp/serving/sparsesign_mlp/1 --all
    docker run -p 8501:8501 -v /tmp/serving/sparsesign_mlp:/models/sparsesign_mlp \\
        -e MODEL_NAME=sparsesign_mlp tensorflow/serving
"""

import argparse
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

import tf_sparsesign  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--out", default="/tmp/serving")
ap.add_argument("--version", type=int, default=1)
args = ap.parse_args()

rng = np.random.default_rng(0)
x = rng.standard_normal((1024, 16)).astype("float32")
y = (x[:, 0] > 0).astype("int32")

strategy = tf_sparsesign.SparseSignStrategy(density=0.02)
with strategy.scope():
    model = keras.Sequential([keras.Input((16,)),
                              keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))
model.fit(x, y, batch_size=64, epochs=2, verbose=0)

path = os.path.join(args.out, "sparsesign_mlp", str(args.version))
model.export(path)  # serving_default signature, inference ops only
print("exported to", path)

# Prove it: load and run it in a process that never imports tf_sparsesign.
check = ("import sys, numpy as np, tensorflow as tf; "
         "f = tf.saved_model.load(sys.argv[1]).signatures['serving_default'];"
         " out = list(f(tf.constant(np.ones((2, 16), np.float32)))"
         ".values())[0]; assert 'tf_sparsesign' not in sys.modules; "
         "print('served without tf_sparsesign:', out.numpy().round(4))")
subprocess.run([sys.executable, "-c", check, path], check=True,
               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
print("keras says:", model.predict(np.ones((2, 16), np.float32),
                                   verbose=0).round(4))
