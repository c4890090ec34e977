"""Production: checkpoints keep every replica's memory, bad gradients stop
before any write, hostile messages are dropped, adversaries are outvoted,
and exported models serve without this package."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import keras

import tf_sparsesign
from tf_sparsesign.experiments import Adversary
from tf_sparsesign.integration.callbacks import read_backup_metadata
from tf_sparsesign.integration.routing import aggregator_of

import float_bounds
from float_bounds import assert_same_mlp_output

ROOT = Path(__file__).resolve().parents[1]
DEVICES = [f"/cpu:{i}" for i in range(4)]


def make(strategy, optimizer=None, **compile_kw):
    """A small model compiled under ``strategy``; ``optimizer`` is a
    factory, called inside the scope as Keras requires."""
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6,)),
                                  keras.layers.Dense(8, activation="tanh"),
                                  keras.layers.Dense(2)])
        opt = optimizer() if optimizer else keras.optimizers.SGD(
            0.01, momentum=0.9)
        model.compile(optimizer=opt, loss="mse", **compile_kw)
    return model


def xy(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 6)).astype("float32"),
            rng.standard_normal((n, 2)).astype("float32"))


def memories(model):
    agg = aggregator_of(model.optimizer)
    return [np.stack([m.numpy() for m in agg.state.memory_values(s)])
            for s in range(len(agg.state.memories))]


def run_py(*args, env=None, timeout=600):
    full = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, env=full,
                          timeout=timeout)


# -- checkpoints --------------------------------------------------------------

@pytest.mark.parametrize("wrapper", [False, True])
def test_save_weights_restores_each_replicas_memory(tmp_path, wrapper):
    if wrapper:
        model = make(tf.distribute.MirroredStrategy(DEVICES),
                     lambda: tf_sparsesign.SparseSignOptimizer(
                         keras.optimizers.SGD(0.01, momentum=0.9),
                         density=0.2))
    else:
        model = make(tf_sparsesign.SparseSignStrategy(density=0.2,
                                                      devices=DEVICES))
    x, y = xy()
    model.fit(x, y, batch_size=16, verbose=0)
    saved_mem = memories(model)
    assert not np.array_equal(saved_mem[0][0], saved_mem[0][1])  # differ
    saved_w = model.get_weights()
    saved_opt = [v.numpy() for v in model.optimizer.variables]
    model.save_weights(tmp_path / "w.weights.h5")
    model.fit(x, y, batch_size=16, verbose=0)  # move everything on
    model.load_weights(tmp_path / "w.weights.h5")
    for a, b in zip(memories(model), saved_mem):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.get_weights(), saved_w):
        np.testing.assert_array_equal(a, b)
    for v, b in zip(model.optimizer.variables, saved_opt):
        np.testing.assert_array_equal(v.numpy(), b)  # slots, iterations


def test_tf_train_checkpoint_restores_each_replicas_memory(tmp_path):
    model = make(tf_sparsesign.SparseSignStrategy(density=0.2,
                                                  devices=DEVICES))
    x, y = xy()
    model.fit(x, y, batch_size=16, verbose=0)
    saved_mem, saved_w = memories(model), model.get_weights()
    ckpt = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    path = ckpt.save(tmp_path / "ckpt")
    model.fit(x, y, batch_size=16, verbose=0)
    ckpt.restore(path).assert_existing_objects_matched()
    for a, b in zip(memories(model), saved_mem):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.get_weights(), saved_w):
        np.testing.assert_array_equal(a, b)


def test_changed_replica_count_resets_memories_with_warning(tmp_path):
    four = make(tf_sparsesign.SparseSignStrategy(density=0.2,
                                                 devices=DEVICES))
    x, y = xy()
    four.fit(x, y, batch_size=16, verbose=0)
    four.save_weights(tmp_path / "w.weights.h5")
    two = make(tf_sparsesign.SparseSignStrategy(density=0.2,
                                                devices=DEVICES[:2]))
    with two.distribute_strategy.scope():  # Keras builds slots in scope
        two.optimizer.build(two.trainable_variables)
    with pytest.warns(UserWarning, match="memories reset to zero"):
        two.load_weights(tmp_path / "w.weights.h5")
    for a, b in zip(two.get_weights(), four.get_weights()):
        np.testing.assert_array_equal(a, b)  # weights still restored
    assert all(not m.any() for m in memories(two))
    two.fit(x, y, batch_size=16, verbose=0)  # and training continues


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    """4 logical CPUs, deterministic ops: crash mid-epoch 2 (of 3), run the
    same command again, and end with the uninterrupted run's weights,
    momentum slots and every replica's memory."""
    script = ROOT / "tests" / "workers" / "resume.py"
    full = run_py(script, tmp_path / "full.npz")
    assert full.returncode == 0, full.stderr[-3000:]
    backup = tmp_path / "backup"
    crashed = run_py(script, tmp_path / "x.npz", "--backup", backup,
                     "--die-at", "1:3")
    assert crashed.returncode == 7, crashed.stderr[-3000:]
    assert read_backup_metadata(backup)["epoch"] == 1
    resumed = run_py(script, tmp_path / "resumed.npz", "--backup", backup)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = np.load(tmp_path / "full.npz"), np.load(tmp_path / "resumed.npz")
    assert sorted(a.files) == sorted(b.files)
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# -- bad gradients and configuration -----------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_gradient_names_variable_and_writes_nothing(bad):
    model = make(tf_sparsesign.SparseSignStrategy(density=0.2,
                                                  devices=DEVICES),
                 lambda: keras.optimizers.SGD(0.01, momentum=0.9,
                                              weight_decay=0.1))
    x, y = xy()
    model.fit(x, y, batch_size=16, verbose=0)
    before_w = model.get_weights()
    before_opt = [v.numpy() for v in model.optimizer.variables
                  if "iteration" not in v.path]
    before_mem = memories(model)
    y_bad = y.copy()
    y_bad[5, 1] = bad  # in the first batch (no shuffling)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"gradient of variable '.*(kernel|bias)' is "
                             r"not finite"):
        model.fit(x, y_bad, batch_size=16, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), before_w):
        np.testing.assert_array_equal(a, b)
    after_opt = [v.numpy() for v in model.optimizer.variables
                 if "iteration" not in v.path]
    for a, b in zip(after_opt, before_opt):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(memories(model), before_mem):
        np.testing.assert_array_equal(a, b)


def test_invalid_configuration_fails_at_construction_or_start():
    for kw in ({"density": 0}, {"density": 1.5}, {"density": -0.1},
               {"k": 0}, {"wire": "zip"}, {"on_invalid": "skip"},
               {"vote": "loud"}, {"method": "magic"}):
        with pytest.raises(ValueError):
            tf_sparsesign.SparseSignStrategy(devices=DEVICES, **kw)
        with pytest.raises(ValueError):
            tf_sparsesign.SparseSignOptimizer(keras.optimizers.SGD(), **kw)
    model = make(tf_sparsesign.SparseSignStrategy(k=10_000, devices=DEVICES))
    with pytest.raises(ValueError, match="larger than the model"):
        model.fit(*xy(), batch_size=16, verbose=0)


# -- hostile messages and adversaries ----------------------------------------

def test_malformed_message_is_dropped_and_counted():
    adversary = Adversary("garbage", replicas=(2,))
    model = make(tf_sparsesign.SparseSignStrategy(
        density=0.2, on_invalid="drop", adversary=adversary,
        devices=DEVICES))
    x, y = xy()
    hist = model.fit(x, y, batch_size=16, verbose=0,
                     callbacks=[tf_sparsesign.CommunicationLogger()])
    steps = len(x) // 16
    assert hist.history["comm_dropped_rows"] == [steps]
    raising = make(tf_sparsesign.SparseSignStrategy(
        density=0.2, adversary=adversary, devices=DEVICES))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"row 2 \(of 4\) is invalid"):
        raising.fit(x, y, batch_size=16, verbose=0)


def _train_against(adversary, vote, dense=False, steps=60):
    """Linear regression with 4 replicas, some flipping their signs."""
    strategy = tf_sparsesign.SparseSignStrategy(
        density=0.5, vote=vote, adversary=adversary, dense=dense,
        devices=DEVICES)
    rng = np.random.default_rng(3)
    w_true = rng.standard_normal((6, 1)).astype("float32")
    x = rng.standard_normal((64 * steps, 6)).astype("float32")
    y = x @ w_true
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6,)),
                                  keras.layers.Dense(1, use_bias=False)])
        model.compile(optimizer=keras.optimizers.SGD(
            0.05 if dense else 0.02), loss="mse")
    model.fit(x, y, batch_size=64, verbose=0, shuffle=False)
    return float(np.abs(model.get_weights()[0] - w_true).mean()), model


@pytest.mark.filterwarnings("ignore:tf_sparsesign. vote='weighted'")
def test_weighted_vote_learns_to_ignore_sign_flippers():
    flippers = Adversary("signflip", replicas=(0, 1))
    err_plain, _ = _train_against(flippers, "plain")
    err_weighted, model = _train_against(flippers, "weighted")
    err_clean, _ = _train_against(None, "plain")
    agg = aggregator_of(model.optimizer)
    weights = agg.exchange.rule.weights().numpy()
    assert weights[0] < 0.5 and weights[1] < 0.5  # flippers (nearly) muted
    assert weights[2] > 2 and weights[3] > 2      # honest ones trusted
    # 2 of 4 flipping: the plain vote ties everywhere and cannot learn
    assert err_weighted < 0.5 * err_plain
    assert err_weighted < err_clean + 0.1


def test_fd_vote_turns_a_sign_flipper_around_end_to_end():
    flipper = Adversary("signflip", replicas=(1,))
    err_plain, _ = _train_against(flipper, "plain")
    err_fd, model = _train_against(flipper, "fd")
    err_clean, _ = _train_against(None, "plain")
    weights = aggregator_of(model.optimizer).exchange.rule.weights().numpy()
    assert weights[1] < -0.5                       # turned around
    assert np.all(weights[[0, 2, 3]] > 0.5)
    assert err_fd < err_plain and err_fd < err_clean + 0.05


# -- serving export -----------------------------------------------------------

SERVE = textwrap.dedent("""
    import sys, numpy as np, tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    fn = loaded.signatures["serving_default"]
    x = np.load(sys.argv[2])
    out = list(fn(tf.constant(x)).values())[0].numpy()
    assert "tf_sparsesign" not in sys.modules
    import tensorflow.python.framework.load_library as _l  # noqa: F401
    np.save(sys.argv[3], out)
    print("SERVED", out.shape)
""")


@pytest.mark.parametrize("how", ["strategy", "wrapper", "multiworker-like"])
def test_export_serves_without_this_package(tmp_path, how):
    if how == "wrapper":
        model = make(tf.distribute.MirroredStrategy(DEVICES),
                     lambda: tf_sparsesign.SparseSignOptimizer(
                         keras.optimizers.SGD(0.01), density=0.2))
    elif how == "strategy":
        model = make(tf_sparsesign.SparseSignStrategy(density=0.2,
                                                      devices=DEVICES))
    else:  # same optimizer state layout as multi-worker (1 replica each)
        model = make(tf_sparsesign.SparseSignStrategy(density=0.2,
                                                      devices=DEVICES[:1]))
    x, y = xy()
    model.fit(x, y, batch_size=16, verbose=0)
    export = tmp_path / "model" / "1"
    model.export(str(export))
    graph = (export / "saved_model.pb").read_bytes()
    for op in (b"SparseSign", b"MajorityVote", b"ResourceApply"):
        assert op not in graph, op
    np.save(tmp_path / "x.npy", x)
    served = run_py("-c", SERVE, export, tmp_path / "x.npy",
                    tmp_path / "out.npy",
                    env={"TF_SPARSESIGN_DISABLE_COMPILED": "1"})
    assert served.returncode == 0, served.stderr[-3000:]
    assert_same_mlp_output(np.load(tmp_path / "out.npy"),
                           model.predict(x, verbose=0), model.get_weights(),
                           x, "served vs predict")
    cli = Path(sys.executable).with_name("saved_model_cli")
    show = subprocess.run([str(cli), "show", "--dir", str(export), "--all"],
                          capture_output=True, text=True, timeout=300)
    assert show.returncode == 0 and "serving_default" in show.stdout, \
        show.stderr[-2000:]
    name = re.search(r"inputs\['([^']+)'\]", show.stdout).group(1)
    run = subprocess.run([str(cli), "run", "--dir", str(export),
                          "--tag_set", "serve", "--signature_def",
                          "serving_default", "--input_exprs",
                          f"{name}={[[1.0] * 6, [0.5] * 6]}"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = np.array([[1.0] * 6, [0.5] * 6], np.float32)
    expected = model.predict(rows, verbose=0)
    printed = run.stdout.split("Result for output key", 1)[-1]
    got = np.array([float(v) for v in re.findall(
        r"[-+]?\d+\.\d*(?:[eE][-+]?\d+)?", printed)]).reshape(expected.shape)
    # NumPy prints 8 digits: fixed point (0.5e-8 absolute) or scientific
    # (0.5e-8 relative), on top of the two paths' rounding.
    _, out = float_bounds.mlp_forward(model.get_weights(), rows)
    float_bounds.assert_within(
        got, expected, 2 * out.err + 5e-9 * np.maximum(1, np.abs(expected)),
        f"saved_model_cli run vs predict:\n{run.stdout}")


def test_tf_saved_model_save_also_serves(tmp_path):
    model = make(tf_sparsesign.SparseSignStrategy(density=0.2,
                                                  devices=DEVICES))
    x, y = xy()
    model.fit(x, y, batch_size=16, verbose=0)

    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32)])
    def serve(inputs):
        return {"outputs": model(inputs, training=False)}

    path = tmp_path / "sm"
    module = tf.Module()
    module.model_vars = model.variables  # weights only, no optimizer
    module.serve = serve
    tf.saved_model.save(module, str(path),
                        signatures={"serving_default": serve})
    assert b"SparseSign" not in (path / "saved_model.pb").read_bytes()
    np.save(tmp_path / "x.npy", x)
    served = run_py("-c", SERVE, path, tmp_path / "x.npy",
                    tmp_path / "out.npy")
    assert served.returncode == 0, served.stderr[-3000:]
    assert_same_mlp_output(np.load(tmp_path / "out.npy"),
                           model.predict(x, verbose=0), model.get_weights(),
                           x, "served vs predict")
