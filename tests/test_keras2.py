"""Keras 2 (tf_keras) support, run from the normal test suite.

The checks themselves are in ``tests/keras2/check_*.py``; each group runs in
its own pytest process with ``TF_USE_LEGACY_KERAS=1`` set before TensorFlow
is imported (``keras2_env.py`` also makes tf-keras 2.21.0 importable).
"""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import tensorflow as tf
import keras

import tf_sparsesign
from tf_sparsesign.aggregation import state as state_lib
from tf_sparsesign.integration.routing import aggregator_of

from keras2_env import ROOT, keras2_env, report, run_checks


@pytest.mark.parametrize("group", ["check_training.py", "check_saving.py",
                                   "check_everyday.py",
                                   "check_multiworker.py"])
def test_keras2(group):
    done = run_checks(group)
    assert done.returncode == 0, report(done)
    assert " passed" in done.stdout and "skipped" not in done.stdout, \
        report(done)


def _run(code, env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


VOTES_WITH = """
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import tf_sparsesign
    strategy = tf_sparsesign.SparseSignStrategy(density=0.5)
    import {lib} as K   # imported after the strategy was made
    with strategy.scope():
        model = K.Sequential([K.Input((3,)), K.layers.Dense(2)])
        model.compile(optimizer=K.optimizers.SGD(0.1), loss="mse")
    model.fit(tf.ones((8, 3)), tf.zeros((8, 2)), batch_size=4, verbose=0)
    print("STEPS", tf_sparsesign.communication_stats(model.optimizer)["steps"])
"""


def test_import_and_keras3_with_the_legacy_flag():
    """TF_USE_LEGACY_KERAS=1 makes tf.keras tf_keras; `import keras` is
    still Keras 3, and the package imports and votes with it."""
    env = keras2_env()
    env.pop("PYTHONPATH", None)  # with or without tf_keras installed
    done = _run(VOTES_WITH.format(lib="keras"), env)
    assert done.returncode == 0 and "STEPS 2" in done.stdout, done.stderr


def test_tf_keras_imported_late_without_the_flag_still_votes():
    """No flag, tf_keras imported after the strategy: routed at run()."""
    env = keras2_env()
    env.pop("TF_USE_LEGACY_KERAS")
    done = _run(VOTES_WITH.format(lib="tf_keras"), env)
    assert done.returncode == 0 and "STEPS 2" in done.stdout, done.stderr


def test_checkpoint_of_another_worker_resets_memories_instead():
    """tf.train.Checkpoint files say whose memories they hold: a worker
    restoring another worker's (tf_keras' multi-worker BackupAndRestore
    restores the chief's file everywhere) resets its own with a warning;
    its own are restored exactly."""
    strategy = tf_sparsesign.SparseSignStrategy(
        density=0.5, devices=[f"/cpu:{i}" for i in range(2)])
    with strategy.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(np.random.default_rng(0).standard_normal((8, 3)),
              np.zeros((8, 2)), batch_size=4, verbose=0)
    state = aggregator_of(model.optimizer).state
    saved = state_lib.checkpoint_tensors(state, worker=0)
    mine = [m.numpy() for m in state.memory_values(0)]
    assert any(m.any() for m in mine)
    with pytest.warns(UserWarning, match="holds worker 0's memories and "
                                         "this is worker 1"):
        state_lib.restore_checkpoint_tensors(state, saved, worker=1)
    assert not any(m.numpy().any() for m in state.memory_values(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state_lib.restore_checkpoint_tensors(state, saved, worker=0)
    for a, b in zip(state.memory_values(0), mine):
        np.testing.assert_array_equal(a.numpy(), b)
    legacy = {k: v for k, v in saved.items() if k != "worker"}
    state_lib.restore_checkpoint_tensors(state, legacy, worker=1)
    assert tf.reduce_any(state.memory_values(0)[0] != 0)  # older files
