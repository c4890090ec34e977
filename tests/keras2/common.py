"""Shared by the Keras 2 checks (run with TF_USE_LEGACY_KERAS=1)."""

import os

import numpy as np
import tensorflow as tf

assert os.environ.get("TF_USE_LEGACY_KERAS") == "1", \
    "run through tests/test_keras2.py (TF_USE_LEGACY_KERAS=1)"

import tf_keras  # noqa: E402

import tf_sparsesign  # noqa: E402
from tf_sparsesign.integration.routing import aggregator_of  # noqa: E402

assert tf.keras.Model is tf_keras.Model  # tf.keras is Keras 2 here

DEVICES = [f"/cpu:{i}" for i in range(4)]
LR = 0.01


def xy(n=64, seed=0, d_in=6, d_out=2):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d_in)).astype("float32"),
            rng.standard_normal((n, d_out)).astype("float32"))


def mlp(keras_module, d_in=6, d_out=2, seed=0):
    keras_module.utils.set_random_seed(seed)
    return keras_module.Sequential([
        keras_module.Input((d_in,)),
        keras_module.layers.Dense(8, activation="tanh"),
        keras_module.layers.Dense(d_out)])


def memories(optimizer):
    agg = aggregator_of(optimizer)
    return [np.stack([m.numpy() for m in agg.state.memory_values(s)])
            for s in range(len(agg.state.memories))]


def counters(optimizer):
    return aggregator_of(optimizer).state.read_counters()


def assert_moved_by_multiples_of_lr(before, after, lr=LR, replicas=1):
    """Plain SGD applying a (sum of) ternary vote(s): every weight moved by
    an integer multiple of lr, and some moved."""
    moved = False
    for a, b in zip(before, after):
        steps = (a - b) / np.float32(lr)
        np.testing.assert_allclose(steps, np.round(steps), atol=2e-3)
        moved |= bool(np.any(np.round(steps) != 0))
    assert moved, "no weight moved"
