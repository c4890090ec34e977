"""One worker of a multi-worker S3GD-MV job; reads its role from TF_CONFIG.

Started by launch.py (or by your cluster manager, one per machine).
"""

import numpy as np
import keras

import tf_sparsesign

# Create the strategy first: it connects to the other workers.
strategy = tf_sparsesign.MultiWorkerSparseSignStrategy(
    density=0.01, timeout_seconds=120)

rng = np.random.default_rng(0)  # every worker loads the same arrays;
x = rng.standard_normal((8192, 32)).astype("float32")  # Keras shards them
y = (x[:, :4].sum(axis=1) > 0).astype("int32")

with strategy.scope():
    model = keras.Sequential([keras.Input((32,)),
                              keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True),
                  metrics=["accuracy"])

history = model.fit(x, y, batch_size=64 * strategy.num_replicas_in_sync,
                    epochs=3, verbose=2,
                    callbacks=[tf_sparsesign.CommunicationLogger()])
print("final", {k: v[-1] for k, v in history.history.items()})
