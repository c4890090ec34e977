"""The everyday Keras features under SparseSignStrategy, written once for
Keras 3 (``tests/test_everyday.py``) and Keras 2 / tf_keras
(``tests/keras2/check_everyday.py``): each check takes the Keras module
``K`` and asserts that the run voted (counters advanced; plain SGD moved
every weight by whole multiples of the learning rate) and that the feature
did what it should."""

import csv
from pathlib import Path

import numpy as np
import tensorflow as tf

import tf_sparsesign
from tf_sparsesign.integration.routing import aggregator_of

DEVICES = [f"/cpu:{i}" for i in range(4)]
LR = 0.01


def strategy(density=0.2):
    return tf_sparsesign.SparseSignStrategy(density=density, devices=DEVICES)


def xy(n=64, seed=0, d_in=6, d_out=2, scale=1.0):
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal((n, d_in))).astype("float32"), \
        (scale * rng.standard_normal((n, d_out))).astype("float32")


def mlp(K, *hidden_layers, d_in=6, d_out=2):
    K.utils.set_random_seed(0)
    return K.Sequential([K.Input((d_in,)), K.layers.Dense(8, "tanh"),
                         *hidden_layers, K.layers.Dense(d_out)])


def steps(model):
    return aggregator_of(model.optimizer).state.read_counters()["steps"]


def weights(model):
    return [np.asarray(w, np.float32) for w in model.get_weights()]


def assert_multiples(before, after, lr):
    """Every change is a whole multiple of ``lr`` (plain SGD applying
    votes); returns the multiples."""
    out = []
    for a, b in zip(before, after):
        k = (b - a) / np.float32(lr)
        np.testing.assert_allclose(k, np.round(k), atol=2e-3)
        out.append(np.round(k))
    assert any(np.any(k != 0) for k in out), "nothing moved"
    return out


def name_of(variable):
    return getattr(variable, "path", None) or variable.name


# -- the checks ---------------------------------------------------------------

def check_mixed_float16(K):
    K.mixed_precision.set_global_policy("mixed_float16")
    try:
        with strategy().scope():
            model = mlp(K)
            model.compile(optimizer=K.optimizers.SGD(LR), loss="mse")
        assert model.layers[0].compute_dtype == "float16"
        assert "LossScaleOptimizer" in type(model.optimizer).__name__
        x, y = xy(scale=0.1)  # no float16 overflow at the initial scale
        before = weights(model)
        hist = model.fit(x, y, batch_size=16, verbose=0)
    finally:
        K.mixed_precision.set_global_policy("float32")
    assert steps(model) == 4 and np.isfinite(hist.history["loss"]).all()
    assert all(w.dtype == np.float32 for w in before)  # float32 masters
    assert_multiples(before, weights(model), LR)


def check_learning_rate_schedule(K):
    schedule = K.optimizers.schedules.ExponentialDecay(
        0.1, decay_steps=1, decay_rate=0.5)
    with strategy().scope():
        model = mlp(K)
        model.compile(optimizer=K.optimizers.SGD(schedule), loss="mse")
    seen = [weights(model)]
    record = K.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(weights(model)))
    model.fit(*xy(), batch_size=16, shuffle=False, verbose=0,
              callbacks=[record])
    assert steps(model) == 4
    for t in range(4):  # step t moves by multiples of 0.1 * 0.5**t
        assert_multiples(seen[t], seen[t + 1], 0.1 * 0.5 ** t)


def check_adam_clipnorm(K, clip_before_vote):
    """Adam's first moment after one step is (1 - beta_1) * (the gradient
    Adam got). Keras 3 clips each replica's raw gradient before the vote,
    so Adam gets the ternary vote and each replica's memory (its clipped
    gradient less what it sent) has norm <= clipnorm; tf_keras clips after
    aggregation, so Adam gets the vote scaled to norm <= clipnorm."""
    clip = 0.5
    with strategy().scope():
        model = mlp(K)
        model.compile(optimizer=K.optimizers.Adam(1e-3, clipnorm=clip),
                      loss="mse")
    x, y = xy(16, scale=10.0)  # raw gradients far above clipnorm
    model.fit(x, y, batch_size=16, verbose=0)
    opt = model.optimizer
    agg = aggregator_of(opt)
    assert steps(model) == 1
    firsts = [v for v in opt.variables  # Keras 3 / tf_keras names
              if "_momentum" in name_of(v) or name_of(v).startswith("m/")]
    assert len(firsts) == len(model.trainable_variables)
    voted = 0
    for m in firsts:
        g = m.numpy() / 0.1  # beta_1 = 0.9
        mags = np.unique(np.round(np.abs(g[g != 0]), 5))
        if len(mags) == 0:
            continue  # every coordinate of this variable tied
        voted += 1
        assert len(mags) == 1, mags  # one magnitude: a (scaled) vote
        norm = np.sqrt(np.count_nonzero(g))
        expected = 1.0 if clip_before_vote else min(1.0, clip / norm)
        np.testing.assert_allclose(mags[0], expected, rtol=1e-4)
    assert voted >= 2
    for slot in range(len(agg.state.memories)):
        norms = [np.linalg.norm(m.numpy())
                 for m in agg.state.memory_values(slot)]
        if clip_before_vote:
            assert max(norms) <= clip * (1 + 1e-5), norms
    if not clip_before_vote:  # raw gradients were not clipped
        assert max(np.linalg.norm(m.numpy()) for m in
                   agg.state.memory_values(0)) > clip


def check_embedding(K):
    """IndexedSlices gradients vote; rows no input looks up never move."""
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 20, (64, 3)).astype("int32")  # rows 20..49 unused
    y = rng.standard_normal((64, 2)).astype("float32")
    with strategy(0.1).scope():
        K.utils.set_random_seed(0)
        model = K.Sequential([K.Input((3,), dtype="int32"),
                              K.layers.Embedding(50, 4), K.layers.Flatten(),
                              K.layers.Dense(2)])
        model.compile(optimizer=K.optimizers.SGD(LR), loss="mse")
    before = weights(model)
    model.fit(ids, y, batch_size=16, verbose=0)
    assert steps(model) == 4
    moved = assert_multiples(before, weights(model), LR)
    assert not moved[0][20:].any() and moved[0][:20].any()


def check_batchnorm_dropout_validation(K):
    with strategy().scope():
        model = mlp(K, K.layers.BatchNormalization(), K.layers.Dropout(0.5))
        model.compile(optimizer=K.optimizers.SGD(LR), loss="mse")
    x, y = xy()
    hist = model.fit(x, y, batch_size=16, epochs=2, verbose=0,
                     validation_data=xy(32, seed=1))
    assert steps(model) == 8  # validation and evaluate do not vote
    assert len(hist.history["val_loss"]) == 2
    bn = model.layers[1]
    assert np.any(bn.moving_mean.numpy() != 0)  # statistics updated
    loss = model.evaluate(x, y, batch_size=16, verbose=0)
    assert np.isfinite(loss) and steps(model) == 8
    p1, p2 = (model.predict(x, batch_size=16, verbose=0) for _ in range(2))
    np.testing.assert_array_equal(p1, p2)  # no dropout at inference


def check_dataset_steps_per_execution(K):
    with strategy().scope():
        model = mlp(K)
        model.compile(optimizer=K.optimizers.SGD(LR), loss="mse",
                      steps_per_execution=4)
    data = tf.data.Dataset.from_tensor_slices(xy(128)).batch(16)
    before = weights(model)
    model.fit(data, epochs=1, verbose=0)
    assert steps(model) == 8 and int(model.optimizer.iterations.numpy()) == 8
    assert_multiples(before, weights(model), LR)


def check_layer_without_gradient(K):
    """A layer whose output is cut from the loss gets no gradient: it does
    not move and nothing is remembered for it; the rest votes."""

    class Cut(K.Model):
        def __init__(self):
            super().__init__()
            self.used = K.layers.Dense(2)
            self.cut = K.layers.Dense(2)

        def call(self, x):
            return self.used(x) + 0.0 * tf.stop_gradient(self.cut(x))

    with strategy().scope():
        K.utils.set_random_seed(0)
        model = Cut()
        model(tf.zeros((1, 6)))
        model.compile(optimizer=K.optimizers.SGD(LR), loss="mse")
    before = {name_of(v): v.numpy() for v in model.trainable_variables}
    model.fit(*xy(), batch_size=16, verbose=0)
    assert steps(model) == 4
    agg = aggregator_of(model.optimizer)
    for slot, v in enumerate(model.trainable_variables):
        changed = not np.array_equal(v.numpy(), before[name_of(v)])
        remembered = any(m.numpy().any()
                         for m in agg.state.memory_values(slot))
        is_cut = any(v is w for w in model.cut.trainable_variables)
        assert changed != is_cut and remembered != is_cut, name_of(v)


def check_callbacks(K, tmp_path):
    """ModelCheckpoint writes each epoch, EarlyStopping stops, CSVLogger
    logs every epoch run (with the vote's counters, through
    CommunicationLogger)."""
    with strategy().scope():
        model = mlp(K)
        model.compile(optimizer=K.optimizers.SGD(LR), loss="mse")
    ckpt = tmp_path / "ckpt.weights.h5"
    callbacks = [
        tf_sparsesign.CommunicationLogger(),
        K.callbacks.ModelCheckpoint(str(ckpt), save_weights_only=True),
        K.callbacks.EarlyStopping(monitor="loss", min_delta=10.0,
                                  patience=1),
        K.callbacks.CSVLogger(str(tmp_path / "log.csv"))]
    hist = model.fit(*xy(), batch_size=16, epochs=10, verbose=0,
                     callbacks=callbacks)
    assert len(hist.history["loss"]) == 2  # stopped after patience
    assert steps(model) == 8 and ckpt.exists()
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert int(rows[-1]["comm_bytes_sent"]) > 0


def check_custom_train_step(K):
    class Custom(K.Sequential):
        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(self(x, training=True) - y))
                loss /= tf.distribute.get_strategy().num_replicas_in_sync
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads,
                                               self.trainable_variables))
            return {"loss": loss}

    with strategy().scope():
        K.utils.set_random_seed(0)
        model = Custom([K.Input((6,)), K.layers.Dense(2)])
        model.compile(optimizer=K.optimizers.SGD(LR))
    before = weights(model)
    model.fit(*xy(), batch_size=16, verbose=0)
    assert steps(model) == 4
    assert_multiples(before, weights(model), LR)


def check_keras_file_round_trip(K, tmp_path):
    with strategy().scope():
        model = mlp(K)
        model.compile(optimizer=K.optimizers.SGD(LR, momentum=0.9),
                      loss="mse")
    model.fit(*xy(), batch_size=16, verbose=0)
    model.save(tmp_path / "m.keras")
    with strategy().scope():
        loaded = K.models.load_model(tmp_path / "m.keras")
    for m in (model, loaded):
        m.fit(*xy(seed=3), batch_size=16, shuffle=False, verbose=0)
    assert steps(loaded) == 8
    for a, b in zip(weights(loaded), weights(model)):
        np.testing.assert_array_equal(a, b)


def check_tensorboard(K, tmp_path):
    """CommunicationLogger(log_dir=...) and Keras' TensorBoard callback
    work from the README's install: the events hold the comm/* scalars
    (per epoch, equal to the logs) and Keras' own loss."""
    with strategy().scope():
        model = mlp(K)
        model.compile(optimizer=K.optimizers.SGD(LR), loss="mse")
    hist = model.fit(*xy(), batch_size=16, epochs=2, verbose=0, callbacks=[
        tf_sparsesign.CommunicationLogger(log_dir=str(tmp_path / "comm")),
        K.callbacks.TensorBoard(log_dir=str(tmp_path / "tb"))])
    scalars = read_scalars(tmp_path / "comm")
    for key in ("bytes_sent", "dense_bytes", "ratio", "message_bytes",
                "dropped_rows"):
        assert scalars[f"comm/{key}"] == [
            (epoch, np.float32(v))
            for epoch, v in enumerate(hist.history[f"comm_{key}"])], key
    assert scalars["comm/bytes_sent"][1][1] > 0
    keras_tags = read_scalars(tmp_path / "tb")
    assert any("loss" in tag for tag in keras_tags), sorted(keras_tags)


def read_scalars(log_dir) -> dict:
    """``{tag: [(step, value), ...]}`` from every events file below."""
    out = {}
    for path in sorted(Path(log_dir).rglob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                number = tf.make_ndarray(value.tensor)
                if number.ndim == 0 and number.dtype.kind in "fiu":
                    out.setdefault(value.tag, []).append(
                        (event.step, np.float32(number)))
    return out
