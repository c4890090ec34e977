"""Keras 2 (tf_keras): the strategy and the wrapper vote, in fit and in
custom loops, exactly as the Keras 3 path does; legacy optimizers and a
tf_keras that stops calling the hook fail loudly."""

import numpy as np
import pytest
import tensorflow as tf
import keras  # Keras 3, for the side-by-side reference
import tf_keras

import tf_sparsesign
from tf_sparsesign.integration import keras2
from tf_sparsesign.integration.routing import aggregator_of

from common import (DEVICES, LR, assert_moved_by_multiples_of_lr, counters,
                    memories, mlp, xy)
from float_bounds import assert_within, mlp_memory_bounds

pytestmark = pytest.mark.filterwarnings("ignore:.*more than signSGD-MV")


def fit_both(density, error_feedback=True, steps=3, batch=16):
    """The same start weights and data through tf_keras and Keras 3 fit
    under SparseSignStrategy (4 replicas); also each model's weights at
    the start of every step."""
    x, y = xy(steps * batch)
    models, seen = [], []
    for lib in (tf_keras, keras):
        strategy = tf_sparsesign.SparseSignStrategy(
            density=density, error_feedback=error_feedback, devices=DEVICES)
        with strategy.scope():
            model = mlp(lib)
            model.compile(optimizer=lib.optimizers.SGD(LR), loss="mse")
        if models:
            model.set_weights(start)
        start = [w.copy() for w in model.get_weights()]
        seen.append([])
        record = lib.callbacks.LambdaCallback(
            on_train_batch_begin=lambda batch, logs, model=model,
            into=seen[-1]: into.append(model.get_weights()))
        model.fit(x, y, batch_size=batch, shuffle=False, verbose=0,
                  callbacks=[record])
        models.append(model)
    return start, models, seen


def test_strategy_fit_votes_exactly_as_keras3():
    start, (k2, k3), (seen2, seen3) = fit_both(0.1)
    assert isinstance(k2.optimizer, tf_keras.optimizers.SGD)
    assert counters(k2.optimizer)["steps"] == 3
    assert counters(k2.optimizer) == counters(k3.optimizer)
    assert_moved_by_multiples_of_lr(start, k2.get_weights())
    assert len(seen2) == len(seen3) == 3
    for step2, step3 in zip(seen2 + [k2.get_weights()],
                            seen3 + [k3.get_weights()]):
        for a, b in zip(step2, step3):
            np.testing.assert_array_equal(a, b)
    # The memories hold each replica's gradients, which tf_keras and
    # Keras 3 compute with other ops (another summation order): equal up
    # to twice the float32 rounding bound of those gradients and sums.
    bounds = mlp_memory_bounds(seen3, *xy(3 * 16), replicas=4)
    for l, (a, b) in enumerate(zip(memories(k2.optimizer),
                                   memories(k3.optimizer))):
        assert a.shape[0] == 4 and not np.array_equal(a[0], a[1])
        for r in range(4):
            assert_within(a[r], b[r], 2 * bounds[r][l],
                          f"memory of variable {l}, replica {r}")


def test_wrapper_is_a_tf_keras_optimizer_and_votes_like_the_strategy():
    """The wrapper under plain MirroredStrategy: tf_keras compile accepts
    it, its config round-trips, and fit ends with exactly the weights of
    plain SGD under SparseSignStrategy."""
    x, y = xy(48)
    models = []
    for wrapper in (False, True):
        strategy = (tf.distribute.MirroredStrategy(DEVICES) if wrapper else
                    tf_sparsesign.SparseSignStrategy(density=0.1,
                                                     devices=DEVICES))
        with strategy.scope():
            model = mlp(tf_keras)
            sgd = tf.keras.optimizers.SGD(LR)
            model.compile(loss="mse", optimizer=tf_sparsesign.
                          SparseSignOptimizer(sgd, density=0.1)
                          if wrapper else sgd)
        start = model.get_weights()
        model.fit(x, y, batch_size=16, shuffle=False, verbose=0)
        models.append(model)
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_array_equal(a, b)
    opt = models[1].optimizer
    assert isinstance(opt, tf_keras.optimizers.Optimizer)
    assert type(opt).__name__ == "SparseSignOptimizer"
    assert counters(opt)["steps"] == 3 and int(opt.iterations.numpy()) == 3
    assert_moved_by_multiples_of_lr(start, models[1].get_weights())
    clone = type(opt).from_config(opt.get_config())
    assert clone.sparse_sign_config == opt.sparse_sign_config
    assert isinstance(clone.inner_optimizer, tf_keras.optimizers.SGD)
    assert float(clone.learning_rate.numpy()) == pytest.approx(LR)
    # tf_keras' own (de)serialization finds it by its registered name
    again = tf_keras.optimizers.deserialize(
        tf_keras.optimizers.serialize(opt))
    assert type(again) is type(opt)
    rice = tf_sparsesign.SparseSignOptimizer(tf.keras.optimizers.SGD(),
                                             wire="rice")
    assert rice.sparse_sign_config.wire == "rice"


def test_custom_loop_votes():
    """(The wrapper in a custom loop: check_multiworker.py.)"""
    x, y = xy(64)
    strategy = tf_sparsesign.SparseSignStrategy(density=0.1, devices=DEVICES)
    with strategy.scope():
        model = mlp(tf_keras)
        opt = tf.keras.optimizers.SGD(LR)
    start = model.get_weights()
    data = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices((x, y)).batch(16))

    @tf.function
    def step(batch):
        def fn(xb, yb):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(model(xb) - yb)) / 16.0
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
        strategy.run(fn, args=batch)

    for batch in data:
        step(batch)
    assert counters(opt)["steps"] == 4
    assert_moved_by_multiples_of_lr(start, model.get_weights())


def test_non_finite_gradient_names_variable_and_writes_nothing():
    strategy = tf_sparsesign.SparseSignStrategy(density=0.2, devices=DEVICES)
    with strategy.scope():
        model = mlp(tf_keras)
        model.compile(optimizer=tf.keras.optimizers.SGD(LR, momentum=0.9),
                      loss="mse")
    x, y = xy()
    model.fit(x, y, batch_size=16, verbose=0)
    def state():  # all but the step counter (tf_keras counts the attempt)
        return (model.get_weights(),
                [v.numpy() for v in model.optimizer.variables
                 if "iteration" not in v.name], memories(model.optimizer))

    before = state()
    y[3, 0] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"gradient of variable '.*' is not finite"):
        model.fit(x, y, batch_size=16, verbose=0, shuffle=False)
    for a_list, b_list in zip(before, state()):
        for a, b in zip(a_list, b_list):
            np.testing.assert_array_equal(a, b)


def test_legacy_optimizers_fail_loudly():
    strategy = tf_sparsesign.SparseSignStrategy(density=0.2, devices=DEVICES)
    with strategy.scope():
        model = mlp(tf_keras)
        model.compile(optimizer=tf.keras.optimizers.legacy.SGD(LR),
                      loss="mse")
    with pytest.raises(RuntimeError, match="legacy tf_keras optimizer SGD"):
        model.fit(*xy(), batch_size=16, verbose=0)
    with pytest.raises(TypeError, match="legacy optimizers"):
        tf_sparsesign.SparseSignOptimizer(tf.keras.optimizers.legacy.SGD())


def test_training_stops_if_tf_keras_bypasses_the_hook(monkeypatch):
    """A tf_keras that stopped calling aggregate_gradients would train
    dense without a word; the guard turns that into an error."""
    from tf_keras.src.optimizers import optimizer, utils

    monkeypatch.setattr(optimizer.Optimizer, "aggregate_gradients",
                        lambda self, gv: utils.all_reduce_sum_gradients(gv))
    strategy = tf_sparsesign.SparseSignStrategy(density=0.2, devices=DEVICES)
    with strategy.scope():
        model = mlp(tf_keras)
        model.compile(optimizer=tf.keras.optimizers.SGD(LR), loss="mse")
        model.optimizer.build(model.trainable_variables)
    with pytest.raises(RuntimeError, match="would have trained with the "
                                           "dense all-reduce"):
        model.fit(*xy(), batch_size=16, verbose=0)


def test_dense_baseline_counts_like_a_ring_all_reduce():
    strategy = tf_sparsesign.SparseSignStrategy(dense=True, devices=DEVICES)
    with strategy.scope():
        model = mlp(tf_keras)
        model.compile(optimizer=tf.keras.optimizers.SGD(LR), loss="mse")
    model.fit(*xy(), batch_size=16, verbose=0)
    stats = tf_sparsesign.communication_stats(model.optimizer)
    assert stats["steps"] == 4 and stats["ratio"] == 1.0


def test_routing_installed_and_versions_guarded():
    from tf_sparsesign.integration._patches import keras2 as p

    assert keras2.in_use() and p.installed()
    p.check_version(tf_keras.__version__)
    for bad in ("2.15.1", "3.0.0", "x"):
        with pytest.raises(RuntimeError, match=rf"tf_keras {bad} is not "
                                               r"supported; supported: "
                                               r"tf_keras >=2\.16, <3\.0"):
            p.check_version(bad)
    with pytest.raises(RuntimeError, match="Optimizer._gone"):
        p.resolve([(p._OPT, "Optimizer", "_gone")])
    assert len(p.resolve()) == len(p.TARGETS) + len(p.READ)
