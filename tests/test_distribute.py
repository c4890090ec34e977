"""S3GD-MV inside tf.distribute and Keras, checked against NumPy.

Four logical CPU devices (conftest). For every path (strategy + fit,
optimizer wrapper + fit, custom loop) one or more steps are replayed in
NumPy from each replica's gradient: error feedback, top-K, vote, SGD.
"""

import numpy as np
import pytest
import tensorflow as tf
import keras

import tf_sparsesign
from tf_sparsesign import policy
from tf_sparsesign.experiments import Adversary
from tf_sparsesign.integration.routing import aggregator_of

import oracle
from float_bounds import (U, Bounded, affine, assert_within, exact, gamma,
                          mlp_memory_bounds)

REPLICAS = 4
LR = 0.01
DEVICES = [f"/cpu:{i}" for i in range(REPLICAS)]


def make_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((5,)),
        keras.layers.Dense(4, activation="tanh"),
        keras.layers.Dense(3),
    ])


def data(steps, batch=8, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps * batch, 5)).astype(np.float32)
    y = rng.standard_normal((steps * batch, 3)).astype(np.float32)
    return x, y


def replica_grads(weights, x, y):
    """Each replica's gradient as Keras computes it under a strategy:
    mean loss over the replica's slice of the global batch, / replicas."""
    model = make_model()
    model.set_weights(weights)
    grads = []
    per = len(x) // REPLICAS
    for r in range(REPLICAS):
        xs, ys = x[r * per:(r + 1) * per], y[r * per:(r + 1) * per]
        with tf.GradientTape() as tape:
            loss = keras.losses.MeanSquaredError()(ys, model(xs))
            loss = loss / REPLICAS
        grads.append([g.numpy() for g in tape.gradient(
            loss, model.trainable_variables)])
    return grads


def numpy_s3gd(weights, x, y, steps, density, error_feedback, batch=8):
    """Replays S3GD-MV in NumPy; returns (weights, per-replica memories,
    per-replica bounds on the memories' float32 rounding)."""
    weights = [w.copy() for w in weights]
    seen = []
    sizes = [w.size for w in weights]
    ks = policy.allocate(sizes, density)
    offsets = np.cumsum([0] + sizes[:-1])
    memory = [[np.zeros_like(w) for w in weights] for _ in range(REPLICAS)]
    for s in range(steps):
        seen.append(list(weights))
        grads = replica_grads(weights, x[s * batch:(s + 1) * batch],
                              y[s * batch:(s + 1) * batch])
        rows = []
        for r in range(REPLICAS):
            row = []
            for l, g in enumerate(grads[r]):
                e = memory[r][l] + g if error_feedback else g
                codes = oracle.encode(e, ks[l])
                if error_feedback:
                    memory[r][l] = oracle.residual(e, codes)
                row.append(np.where(codes >= 0, codes + 2 * offsets[l], -1))
            rows.append(np.concatenate(row))
        votes, _ = oracle.vote(np.array(rows), sum(sizes))
        for l, w in enumerate(weights):
            v = votes[offsets[l]:offsets[l] + sizes[l]].reshape(w.shape)
            weights[l] = (w - np.float32(LR) * v).astype(np.float32)
    bounds = mlp_memory_bounds(seen, x[:steps * batch], y[:steps * batch],
                               REPLICAS)
    return weights, memory, bounds


def assert_mirrored_equal(model, expected):
    for var, exp in zip(model.trainable_variables, expected):
        for component in var.value.values:  # every device's copy
            np.testing.assert_array_equal(component.numpy(), exp)


def assert_memories(optimizer, expected_memory, bounds=None, exact=False):
    """Each replica's residual memory: bit for bit with injected gradients
    (``exact``); through fit the gradients inside the traced step
    and the eager recomputation round differently (another summation
    order), so there within twice the float32 rounding ``bounds`` of
    those gradients and sums (float_bounds.mlp_memory_bounds), while the
    (ternary) weight updates agree exactly."""
    agg = aggregator_of(optimizer)
    for l in range(len(agg.layout.sizes)):
        per_replica = agg.state.memory_values(l)
        assert len(per_replica) == REPLICAS
        for r in range(REPLICAS):
            if exact:
                np.testing.assert_array_equal(per_replica[r].numpy(),
                                              expected_memory[r][l])
            else:
                assert_within(per_replica[r].numpy(), expected_memory[r][l],
                              2 * bounds[r][l],
                              f"memory of variable {l}, replica {r}")


@pytest.mark.parametrize("density,ef", [(0.1, True), (0.25, False),
                                        (0.05, True), (1.0, False)])
def test_strategy_fit_matches_numpy(density, ef):
    steps = 3
    x, y = data(steps)
    strategy = tf_sparsesign.SparseSignStrategy(
        density=density, error_feedback=ef, devices=DEVICES)
    with strategy.scope():
        model = make_model()
        model.compile(optimizer=keras.optimizers.SGD(LR), loss="mse")
    start = [w.copy() for w in model.get_weights()]
    # density 1 (signSGD-MV) is itself the packed baseline: no warning.
    with pytest.warns(UserWarning, match="more than signSGD") if (
            0.04 < density < 1) else _no_warning():
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    weights, memory, bounds = numpy_s3gd(start, x, y, steps, density, ef)
    assert_mirrored_equal(model, weights)
    if ef:
        assert_memories(model.optimizer, memory, bounds)
    else:
        assert aggregator_of(model.optimizer).state.memories == []


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_wrapper_under_plain_mirrored_matches_numpy():
    steps = 2
    x, y = data(steps, seed=5)
    strategy = tf.distribute.MirroredStrategy(DEVICES)
    with strategy.scope():
        model = make_model()
        opt = tf_sparsesign.SparseSignOptimizer(
            keras.optimizers.SGD(LR), density=0.1)
        model.compile(optimizer=opt, loss="mse")
    start = [w.copy() for w in model.get_weights()]
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    weights, memory, bounds = numpy_s3gd(start, x, y, steps, 0.1, True)
    assert_mirrored_equal(model, weights)
    assert_memories(opt, memory, bounds)


def numpy_s3gd_from_grads(weights, grads_per_step, density):
    """NumPy S3GD-MV with given per-replica gradients (no model)."""
    weights = [w.copy() for w in weights]
    sizes = [w.size for w in weights]
    ks = policy.allocate(sizes, density)
    offsets = np.cumsum([0] + sizes[:-1])
    memory = [[np.zeros_like(w) for w in weights] for _ in range(REPLICAS)]
    for grads in grads_per_step:
        rows = []
        for r in range(REPLICAS):
            row = []
            for l, g in enumerate(grads[r]):
                e = memory[r][l] + g
                codes = oracle.encode(e, ks[l])
                memory[r][l] = oracle.residual(e, codes)
                row.append(np.where(codes >= 0, codes + 2 * offsets[l], -1))
            rows.append(np.concatenate(row))
        votes, _ = oracle.vote(np.array(rows), sum(sizes))
        for l, w in enumerate(weights):
            v = votes[offsets[l]:offsets[l] + sizes[l]].reshape(w.shape)
            weights[l] = (w - np.float32(LR) * v).astype(np.float32)
    return weights, memory


def test_custom_training_loop_with_known_gradients_exact():
    """strategy.run + apply_gradients; each replica's gradient is injected,
    so weights and every replica's memory must match NumPy bit for bit."""
    steps, density = 3, 0.2
    strategy = tf.distribute.MirroredStrategy(DEVICES)
    with strategy.scope():
        model = make_model()
        opt = tf_sparsesign.SparseSignOptimizer(
            keras.optimizers.SGD(LR), density=density)
        opt.build(model.trainable_variables)
    start = [w.copy() for w in model.get_weights()]
    rng = np.random.default_rng(11)
    grads_per_step = [
        [[rng.standard_normal(w.shape).astype(np.float32) for w in start]
         for _ in range(REPLICAS)] for _ in range(steps)]

    @tf.function
    def train_step(step_grads):
        def step_fn():
            r = tf.distribute.get_replica_context().replica_id_in_sync_group
            grads = [tf.gather(g, r) for g in step_grads]
            opt.apply_gradients(zip(grads, model.trainable_variables))
        strategy.run(step_fn)

    for grads in grads_per_step:
        stacked = [tf.constant(np.stack([grads[r][l] for r in
                                         range(REPLICAS)]))
                   for l in range(len(start))]
        train_step(stacked)
    weights, memory = numpy_s3gd_from_grads(start, grads_per_step, density)
    assert_mirrored_equal(model, weights)
    assert_memories(opt, memory, exact=True)


def test_custom_training_loop_with_model_matches_numpy():
    steps = 2
    x, y = data(steps, seed=7)
    strategy = tf.distribute.MirroredStrategy(DEVICES)
    with strategy.scope():
        model = make_model()
        opt = tf_sparsesign.SparseSignOptimizer(
            keras.optimizers.SGD(LR), density=0.1)
        opt.build(model.trainable_variables)
    start = [w.copy() for w in model.get_weights()]
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    dist = strategy.experimental_distribute_dataset(ds)

    @tf.function
    def train_step(batch):
        def step_fn(xb, yb):
            with tf.GradientTape() as tape:
                # Keras losses already divide by the number of replicas
                # inside a strategy (scale_loss_for_distribution).
                loss = keras.losses.MeanSquaredError()(yb, model(xb))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
        strategy.run(step_fn, args=batch)

    for batch in dist:
        train_step(batch)
    weights, memory, bounds = numpy_s3gd(start, x, y, steps, 0.1, True)
    assert_mirrored_equal(model, weights)
    assert_memories(opt, memory, bounds)


def _record_all_reduces(monkeypatch):
    from tensorflow.python.distribute import distribute_lib

    sizes = []
    original = distribute_lib.ReplicaContext.all_reduce

    def recording(self, reduce_op, value, options=None):
        for v in tf.nest.flatten(value):
            sizes.append(tf.TensorShape(v.shape).num_elements())
        return original(self, reduce_op, value, options)

    monkeypatch.setattr(distribute_lib.ReplicaContext, "all_reduce",
                        recording)
    return sizes


@pytest.mark.parametrize("dense", [False, True])
def test_no_gradient_sized_all_reduce_in_train_graph(monkeypatch, dense):
    sizes = _record_all_reduces(monkeypatch)
    strategy = tf_sparsesign.SparseSignStrategy(density=0.02, dense=dense,
                                                devices=DEVICES)
    with strategy.scope():
        model = make_model()
        model.compile(optimizer=keras.optimizers.SGD(LR), loss="mse",
                      metrics=["mae"])
    x, y = data(1)
    model.fit(x, y, batch_size=8, verbose=0)
    var_sizes = {int(np.prod(v.shape)) for v in model.trainable_variables}
    gradient_sized = [s for s in sizes if s in var_sizes]
    if dense:  # the detector works: the dense baseline all-reduces grads
        assert gradient_sized
    else:
        assert not gradient_sized, sizes


def test_sync_batchnorm_and_metrics_stay_dense_and_correct():
    strategy = tf_sparsesign.SparseSignStrategy(density=0.5, devices=DEVICES)
    x, y = data(1, seed=3)
    with strategy.scope():
        model = keras.Sequential([
            keras.Input((5,)),
            keras.layers.BatchNormalization(synchronized=True),
            keras.layers.Dense(3)])
        model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse",
                      metrics=["mae"])
    hist = model.fit(x, y, batch_size=8, verbose=0)
    # With lr 0 the weights do not move; moving statistics use the global
    # batch (synchronized), and the loss/metric equal an evaluation.
    bn = model.layers[0]
    expected_mean = 0.99 * 0 + 0.01 * x.mean(axis=0)
    # float32 against float64, each within its rounding bound: the global
    # mean of the 8 rows (summed in any order, / 8), times 1 - 0.99.
    X = exact(x)
    mean = X.mean(axis=0)
    assert_within(bn.moving_mean.numpy(), expected_mean,
                  mean.scaled(0.01, roundings=2).err, "moving mean")
    # Training-mode output normalises with the global batch statistics
    # (that is what the synchronized all-reduce provides).
    xn = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + bn.epsilon)
    w, b = model.layers[1].get_weights()
    # The layer's float32 path: variance E[x^2] - mean^2, inv = rsqrt(var
    # + eps) (eps as float32), x * inv - mean * inv, the Dense layer, then
    # the metric's mean of 24 absolute errors.
    eps = Bounded(bn.epsilon, abs(float(np.float32(bn.epsilon)) - bn.epsilon))
    inv = ((X * X).mean(axis=0) - mean * mean + eps).rsqrt()
    out = affine(X * inv - mean * inv, w, b)
    mae = (out - exact(y)).abs().mean()
    assert_within(hist.history["mae"][0], np.abs(xn @ w + b - y).mean(),
                  mae.err, "mae")


def test_k_policy_total_and_auto():
    assert policy.allocate([100, 10], k=11) == [10, 1]
    assert sum(policy.allocate([7, 13, 1000], k=50)) == 50
    d = policy.auto_density(4)
    assert policy.allocate([960], "auto", num_replicas=4) == [10]
    assert d == pytest.approx(1 / 96)
    assert policy.auto_density(64) == pytest.approx(1 / 96 * 8 / 64)
    with pytest.raises(ValueError, match="larger than the model"):
        policy.allocate([10], k=11)
    for bad in (0, -0.1, 1.5, "half", float("nan")):
        with pytest.raises(ValueError, match="density"):
            tf_sparsesign.SparseSignStrategy(density=bad, devices=DEVICES)
    with pytest.raises(ValueError, match="on_invalid"):
        tf_sparsesign.SparseSignOptimizer(keras.optimizers.SGD(),
                                          on_invalid="ignore")


def test_k_total_policy_through_strategy():
    strategy = tf_sparsesign.SparseSignStrategy(k=5, devices=DEVICES)
    with strategy.scope():
        model = make_model()
        model.compile(optimizer=keras.optimizers.SGD(LR), loss="mse")
    x, y = data(1)
    model.fit(x, y, batch_size=8, verbose=0)
    agg = aggregator_of(model.optimizer)
    assert sum(agg.ks) == 5
    assert agg.ks == policy.allocate(agg.layout.sizes, k=5)


def test_accounting_counts_actual_messages():
    strategy = tf_sparsesign.SparseSignStrategy(density=0.02, devices=DEVICES)
    with strategy.scope():
        model = make_model()
        model.compile(optimizer=keras.optimizers.SGD(LR), loss="mse")
    x, y = data(3)
    hist = model.fit(x, y, batch_size=8, epochs=1, verbose=0,
                     callbacks=[tf_sparsesign.CommunicationLogger()])
    agg = aggregator_of(model.optimizer)
    message = 4 * (1 + sum(agg.ks))  # fingerprint + codes, int32
    n = sum(agg.layout.sizes)
    stats = tf_sparsesign.accounting.communication_stats(model.optimizer)
    assert stats["steps"] == 3
    assert stats["message_bytes"] == message
    assert stats["bytes_sent"] == 3 * (REPLICAS - 1) * message
    assert stats["dense_bytes"] == 3 * int(2 * 3 / 4 * 4 * n)

    assert hist.history["comm_bytes_sent"] == [stats["bytes_sent"]]
    assert hist.history["comm_ratio"][0] == pytest.approx(
        stats["dense_bytes"] / stats["bytes_sent"])
    # the KPI: the time model's seconds saved per step against dense (one
    # host: nothing crosses a wire, so only the compute differs)
    one_host = tf_sparsesign.policy.Link(float("inf"), 0.0)
    dense, mine = tf_sparsesign.policy.predict(
        tf_sparsesign.policy.Workload(n, sum(agg.ks), REPLICAS),
        ["dense", stats["exchange"]], link=one_host)
    assert stats["exchange"] == "allgather/int32"
    assert stats["time_saved"] == pytest.approx(dense.seconds - mine.seconds)
    assert hist.history["comm_time_saved"] == [stats["time_saved"]]


def test_wrapper_serialization_round_trip(tmp_path):
    opt = tf_sparsesign.SparseSignOptimizer(
        keras.optimizers.Adam(1e-3), density=0.05, error_feedback=False)
    clone = tf_sparsesign.SparseSignOptimizer.from_config(opt.get_config())
    assert clone.sparse_sign_config == opt.sparse_sign_config
    assert isinstance(clone.inner_optimizer, keras.optimizers.Adam)
    model = make_model()
    model.compile(optimizer=opt, loss="mse")
    x, y = data(1)
    model.fit(x, y, batch_size=8, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, tf_sparsesign.SparseSignOptimizer)
    assert loaded.optimizer.sparse_sign_config == opt.sparse_sign_config
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    loaded.fit(x, y, batch_size=8, verbose=0)  # still trains


def test_jit_compile_falls_back_with_warning():
    strategy = tf_sparsesign.SparseSignStrategy(density=0.02, devices=DEVICES)
    with strategy.scope():
        model = make_model()
        model.compile(optimizer=keras.optimizers.SGD(LR), loss="mse",
                      jit_compile=True)
    x, y = data(1)
    with pytest.warns(UserWarning, match="jit_compile=True is not supported"):
        model.fit(x, y, batch_size=8, verbose=0)
    assert model.jit_compile is False


def test_plain_strategy_unaffected():
    """Outside our strategies nothing changes (the hook is guarded)."""
    strategy = tf.distribute.MirroredStrategy(DEVICES)
    with strategy.scope():
        model = make_model()
        model.compile(optimizer=keras.optimizers.SGD(LR), loss="mse")
    x, y = data(1)
    model.fit(x, y, batch_size=8, verbose=0)
    assert aggregator_of(model.optimizer) is None


def test_topk_values_baseline_applies_mean_of_sent_values():
    """method="topk_values": each replica sends its top-K values; the update
    is their sum (zeros elsewhere) — the mean, with Keras' per-replica loss
    scaling — replayed in NumPy."""
    density = 0.2
    strategy = tf.distribute.MirroredStrategy(DEVICES)
    with strategy.scope():
        model = make_model()
        opt = tf_sparsesign.SparseSignOptimizer(
            keras.optimizers.SGD(LR), density=density, method="topk_values")
        opt.build(model.trainable_variables)
    start = [w.copy() for w in model.get_weights()]
    rng = np.random.default_rng(4)
    grads = [[rng.standard_normal(w.shape).astype(np.float32) for w in start]
             for _ in range(REPLICAS)]

    @tf.function
    def train_step(stacked):
        def step_fn():
            r = tf.distribute.get_replica_context().replica_id_in_sync_group
            opt.apply_gradients(zip([tf.gather(g, r) for g in stacked],
                                    model.trainable_variables))
        strategy.run(step_fn)

    train_step([tf.constant(np.stack([grads[r][l] for r in range(REPLICAS)]))
                for l in range(len(start))])
    ks = policy.allocate([w.size for w in start], density)
    lr = np.float32(LR)
    for l, w in enumerate(start):
        total = np.zeros(w.size, np.float32)
        sent = np.zeros(w.size)  # sum of |sent values|, per coordinate
        for r in range(REPLICAS):
            codes = oracle.encode(grads[r][l], ks[l])
            idx = codes[codes >= 0] >> 1
            total[idx] += grads[r][l].reshape(-1)[idx]
            sent[idx] += np.abs(grads[r][l].reshape(-1)[idx])
        expected = w - lr * total.reshape(w.shape)
        # The step sums the sent values in its own order, NumPy in replica
        # order: each within gamma(R-1) * sum|values| of the exact sum;
        # then lr * total and the subtraction round once each.
        sent = sent.reshape(w.shape)
        one = (lr * sent * (gamma(REPLICAS - 1) + 2 * U)
               + U * (np.abs(w) + lr * sent))
        assert_within(model.get_weights()[l], expected, 2 * one,
                      f"weights of variable {l}")


def test_random_k_baseline_trains_and_sends_k_signs():
    strategy = tf_sparsesign.SparseSignStrategy(
        density=0.3, error_feedback=False, method="random_k", devices=DEVICES)
    with strategy.scope():
        model = make_model()
        model.compile(optimizer=keras.optimizers.SGD(LR), loss="mse")
    before = [w.copy() for w in model.get_weights()]
    x, y = data(2)
    model.fit(x, y, batch_size=8, verbose=0)
    moved = [np.abs(a - b) for a, b in zip(model.get_weights(), before)]
    # every change is a multiple of lr (a vote of -1/0/+1 per step)
    for m in moved:
        steps = m / LR
        np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    assert sum(int((m > 0).sum()) for m in moved) > 0
    agg = aggregator_of(model.optimizer)
    stats = agg.state.read_counters()
    assert stats["message_bytes"] == 4 * (1 + sum(agg.ks))


def test_rice_wire_gives_identical_training_with_fewer_bytes():
    """wire="rice" changes only the message encoding: same weights and
    memories as int32 codes, and a smaller message (at 1% density)."""
    def run(wire):
        strategy = tf_sparsesign.SparseSignStrategy(
            density=0.01, wire=wire, devices=DEVICES)
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((64,)),
                                      keras.layers.Dense(256),
                                      keras.layers.Dense(8)])
            model.compile(optimizer=keras.optimizers.SGD(LR), loss="mse")
        rng = np.random.default_rng(9)
        x = rng.standard_normal((32, 64)).astype(np.float32)
        y = rng.standard_normal((32, 8)).astype(np.float32)
        model.fit(x, y, batch_size=16, shuffle=False, verbose=0)
        agg = aggregator_of(model.optimizer)
        return model.get_weights(), memories_of(agg), agg.state.read_counters()

    w_int, m_int, c_int = run("int32")
    w_rice, m_rice, c_rice = run("rice")
    for a, b in zip(w_int + m_int, w_rice + m_rice):
        np.testing.assert_array_equal(a, b)
    assert c_rice["message_bytes"] < c_int["message_bytes"] / 2.5


def memories_of(agg):
    return [np.stack([m.numpy() for m in agg.state.memory_values(s)])
            for s in range(len(agg.state.memories))]


def test_rice_wire_drops_undecodable_message():
    adversary = Adversary("garbage", replicas=(1,))
    strategy = tf_sparsesign.SparseSignStrategy(
        density=0.1, wire="rice", on_invalid="drop", adversary=adversary,
        devices=DEVICES)
    with strategy.scope():
        model = make_model()
        model.compile(optimizer=keras.optimizers.SGD(LR), loss="mse")
    x, y = data(2)
    model.fit(x, y, batch_size=8, verbose=0)
    assert aggregator_of(model.optimizer).state.read_counters()[
        "dropped_rows"] == 2


def test_dense_baseline_counts_last_message_not_a_sum():
    strategy = tf_sparsesign.SparseSignStrategy(dense=True, devices=DEVICES)
    with strategy.scope():
        model = make_model()
        model.compile(optimizer=keras.optimizers.SGD(LR), loss="mse")
    x, y = data(3)
    model.fit(x, y, batch_size=8, verbose=0)
    stats = aggregator_of(model.optimizer).state.read_counters()
    n = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    assert stats["steps"] == 3
    assert stats["message_bytes"] == 4 * n
    assert stats["bytes_sent"] == stats["dense_bytes"] == 3 * int(
        2 * 3 / 4 * 4 * n)
