"""Keras 2 (tf_keras): every replica's error-feedback memory survives
tf.train.Checkpoint, save_weights (TF and .weights.h5), .keras files and
SavedModel; exported models serve without this package."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tf_sparsesign

from common import DEVICES, LR, counters, memories, mlp, xy
from float_bounds import assert_same_mlp_output

pytestmark = pytest.mark.filterwarnings("ignore:.*more than signSGD-MV")


def make(wrapper):
    """A momentum-SGD model under the strategy, or the wrapper under
    MirroredStrategy, trained one epoch (4 steps, 4 replicas)."""
    model = fresh(wrapper, seed=0)
    model.fit(*xy(), batch_size=16, verbose=0)
    return model


def fresh(wrapper, seed=5):
    """``make``'s model and optimizer, built but untrained."""
    strategy = (tf.distribute.MirroredStrategy(DEVICES) if wrapper else
                tf_sparsesign.SparseSignStrategy(density=0.2,
                                                 devices=DEVICES))
    with strategy.scope():
        model = mlp(tf_keras, seed=seed)
        opt = tf.keras.optimizers.SGD(LR, momentum=0.9)
        if wrapper:
            opt = tf_sparsesign.SparseSignOptimizer(opt, density=0.2)
        model.compile(optimizer=opt, loss="mse")
        model.optimizer.build(model.trainable_variables)
    return model


def snapshot(model):
    return (model.get_weights(),
            [v.numpy() for v in model.optimizer.variables],
            memories(model.optimizer))


def assert_same(a, b):
    for xs, ys in zip(a, b):
        assert len(xs) == len(ys)
        for x, y in zip(xs, ys):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("fmt,wrapper", [
    ("tf.train.Checkpoint", False), ("save_weights-tf", False),
    ("save_weights-h5", False), ("tf.train.Checkpoint", True),
    ("save_weights-h5", True)])
def test_checkpoints_restore_each_replicas_memory(tmp_path, fmt, wrapper):
    model = make(wrapper)
    saved = snapshot(model)
    assert not np.array_equal(saved[2][0][0], saved[2][0][1])  # differ
    if fmt == "tf.train.Checkpoint":
        ckpt = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
        path = ckpt.save(tmp_path / "ckpt")
    elif fmt == "save_weights-tf":
        path = str(tmp_path / "ckpt")
        model.save_weights(path)
    else:
        path = str(tmp_path / "w.weights.h5")
        model.save_weights(path)
    model.fit(*xy(seed=1), batch_size=16, verbose=0)  # move everything on
    if fmt == "tf.train.Checkpoint":
        ckpt.restore(path).assert_existing_objects_matched()
    elif fmt == "save_weights-tf":
        model.load_weights(path)
    else:
        # tf_keras 2.21 cannot load .weights.h5 into a model whose metrics
        # were built under MirroredStrategy (its metrics' SUM variables
        # fail to assign from h5py datasets): load into a fresh model, as a
        # resumed job does.
        model = fresh(wrapper)
        model.load_weights(path)
    assert_same(snapshot(model), saved)


def test_checkpoint_restores_into_a_fresh_model(tmp_path):
    """Restore before the optimizer exists (deferred restoration)."""
    model = make(wrapper=False)
    saved = snapshot(model)
    path = tf.train.Checkpoint(model=model).save(tmp_path / "ckpt")
    strategy = tf_sparsesign.SparseSignStrategy(density=0.2, devices=DEVICES)
    with strategy.scope():
        restored = mlp(tf_keras, seed=5)
        restored.compile(optimizer=tf.keras.optimizers.SGD(LR, momentum=0.9),
                         loss="mse")
        tf.train.Checkpoint(model=restored).restore(path)
        restored.optimizer.build(restored.trainable_variables)
    assert_same(snapshot(restored), saved)


@pytest.mark.parametrize("wrapper", [False, True])
def test_keras_file_round_trip_then_more_training(tmp_path, wrapper):
    model = make(wrapper)
    saved = snapshot(model)
    model.save(tmp_path / "m.keras")
    strategy = (tf.distribute.MirroredStrategy(DEVICES) if wrapper else
                tf_sparsesign.SparseSignStrategy(density=0.2,
                                                 devices=DEVICES))
    with strategy.scope():
        loaded = tf_keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer) is type(model.optimizer)
    if wrapper:
        assert loaded.optimizer.sparse_sign_config == \
            model.optimizer.sparse_sign_config
    assert_same(snapshot(loaded), saved)
    for m in (model, loaded):  # the same next epoch, exactly
        m.fit(*xy(seed=2), batch_size=16, shuffle=False, verbose=0)
    assert_same(snapshot(loaded), snapshot(model))
    assert counters(loaded.optimizer)["steps"] == 8


def test_savedmodel_format_loads_with_the_wrapper_and_trains_on(tmp_path):
    """tf_keras' SavedModel format keeps the model and the optimizer's
    config; it restores no optimizer state in tf_keras 2.21, not even a
    plain SGD's step counter, so neither memories nor counters (use
    .keras, save_weights or tf.train.Checkpoint to resume)."""
    model = make(wrapper=True)
    model.save(tmp_path / "sm")
    with tf.distribute.MirroredStrategy(DEVICES).scope():
        loaded = tf_keras.models.load_model(tmp_path / "sm")
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.sparse_sign_config == \
        model.optimizer.sparse_sign_config
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    loaded.fit(*xy(), batch_size=16, verbose=0)
    assert counters(loaded.optimizer)["steps"] == 4


def test_export_serves_without_this_package(tmp_path):
    model = make(wrapper=False)
    x = xy()[0]
    model.export(str(tmp_path / "export"))
    graph = (tmp_path / "export" / "saved_model.pb").read_bytes()
    assert b"SparseSign" not in graph and b"MajorityVote" not in graph
    np.save(tmp_path / "x.npy", x)
    code = ("import sys, numpy as np, tensorflow as tf\n"
            "m = tf.saved_model.load(sys.argv[1])\n"
            "out = m.serve(tf.constant(np.load(sys.argv[2])))\n"
            "assert 'tf_sparsesign' not in sys.modules\n"
            "np.save(sys.argv[3], out.numpy())\n")
    env = dict(os.environ, TF_SPARSESIGN_DISABLE_COMPILED="1")
    env.pop("TF_USE_LEGACY_KERAS")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path /
                                                           "export"),
                           str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                          capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_mlp_output(np.load(tmp_path / "y.npy"),
                           model.predict(x, verbose=0), model.get_weights(),
                           x, "served vs predict")


def test_backup_and_restore_resumes_to_identical_state(tmp_path):
    """tf_keras' own BackupAndRestore, 4 replicas, deterministic ops: crash
    mid-epoch 2 (of 3), run the same command again, and end with the
    uninterrupted run's weights, slots, counters and every replica's
    memory."""
    script = Path(__file__).resolve().parents[1] / "workers" / \
        "resume_keras2.py"

    def run(*args):
        return subprocess.run([sys.executable, str(script), *map(str, args)],
                              capture_output=True, text=True, timeout=600)

    full = run(tmp_path / "full.npz")
    assert full.returncode == 0, full.stderr[-3000:]
    crashed = run(tmp_path / "x.npz", "--backup", tmp_path / "b",
                  "--die-at", "1:3")
    assert crashed.returncode == 7, crashed.stderr[-3000:]
    resumed = run(tmp_path / "resumed.npz", "--backup", tmp_path / "b")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = np.load(tmp_path / "full.npz"), np.load(tmp_path / "resumed.npz")
    assert sorted(a.files) == sorted(b.files)
    assert any(k.startswith("m") for k in a.files)
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
