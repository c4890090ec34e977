"""The sharded exchange: buckets by stride, one all-to-all, a vote per
shard, one all-gather of the shard votes.

* "exact" without bucket overflow equals the all-gather vote bit for bit
  (weights and every replica's memory), 4 logical devices and 2-3 real
  worker processes;
* overflow loses nothing: what was sent plus the new memory equals the old
  memory plus the gradient, per coordinate;
* "topk" sends at most ceil(K/M) votes per shard, each one the exact vote;
* malformed buckets abstain and are counted; the byte counters equal the
  byte model of `plan` (policy.exchange_bytes) where messages have a fixed
  size.
"""

import numpy as np
import pytest
import tensorflow as tf
import keras

import tf_sparsesign
from tf_sparsesign import config as config_lib
from tf_sparsesign import policy
from tf_sparsesign.aggregation import registry
from tf_sparsesign.experiments import Adversary
from tf_sparsesign.integration.routing import aggregator_of

from multiworker import run_workers
from workers.mw_fit import BATCH_PER_WORKER, arrays, model_fn

DEVICES = [f"/cpu:{i}" for i in range(4)]


def fit(steps=3, optimizer=None, **settings):
    strategy = tf_sparsesign.SparseSignStrategy(devices=DEVICES, **settings)
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((10,)),
                                  keras.layers.Dense(48, activation="tanh"),
                                  keras.layers.Dense(5)])
        model.compile(optimizer=optimizer or keras.optimizers.SGD(0.05),
                      loss="mse")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((32 * steps, 10)).astype(np.float32)
    y = rng.standard_normal((32 * steps, 5)).astype(np.float32)
    model.fit(x, y, batch_size=32, shuffle=False, verbose=0)
    agg = aggregator_of(model.optimizer)
    memories = [np.stack([m.numpy() for m in agg.state.memory_values(s)])
                for s in range(len(agg.state.memories))]
    return model.get_weights(), memories, agg.state.read_counters(), agg


@pytest.mark.parametrize("settings", [
    dict(density=0.05), dict(density=0.05, wire="rice"),
    dict(density=0.1, error_feedback=False),
    dict(density=0.05, vote="weighted")], ids=str)
def test_sharded_exact_equals_allgather(settings):
    w_all, m_all, c_all, _ = fit(**settings)
    # Buckets of K codes each (capacity M * K / M): no overflow possible.
    w_sh, m_sh, c_sh, agg = fit(aggregation="sharded", shard_capacity=4.0,
                                **settings)
    assert type(agg.exchange).__name__ == "ShardedExchange"
    assert c_sh["overflow"] == 0  # else the comparison would not hold
    for a, b in zip(w_all + m_all, w_sh + m_sh):
        np.testing.assert_array_equal(a, b)
    assert c_sh["steps"] == c_all["steps"] == 3


def test_sharded_bytes_are_the_plan_byte_model():
    n = 10 * 48 + 48 + 48 * 5 + 5
    ks = policy.allocate([480, 48, 240, 5], 0.05)
    for downlink in ("topk", "exact"):
        _, _, counters, agg = fit(aggregation="sharded", downlink=downlink,
                                  density=0.05)
        model = policy.exchange_bytes(n, sum(ks), 4, "int32", "sharded",
                                      downlink)
        fmt = policy.downlink_format(n, sum(ks), 4, downlink)[0]
        if fmt == "ternary" or downlink == "topk":  # fixed-size messages
            assert counters["message_bytes"] == model["message"]
            assert counters["bytes_sent"] == 3 * model["sent"]
        assert counters["bytes_sent"] == counters["bytes_received"] > 0


def test_topk_downlink_sends_only_the_strongest_exact_votes():
    base = dict(density=0.1, error_feedback=False)
    w_exact, _, _, agg = fit(steps=1, aggregation="sharded", **base)
    w_top, _, _, agg_top = fit(steps=1, aggregation="sharded",
                               downlink="topk", **base)
    w0 = fit(steps=1, optimizer=keras.optimizers.SGD(0.0), **base)[0]
    k = sum(agg.ks)
    moved = 0
    for exact, top, init in zip(w_exact, w_top, w0):
        d_exact, d_top = exact - init, top - init
        touched = d_top != 0
        moved += int(touched.sum())
        np.testing.assert_array_equal(d_top[touched], d_exact[touched])
    assert 0 < moved <= 4 * -(-k // 4)
    assert moved < sum(int((e - i != 0).sum())
                       for e, i in zip(w_exact, w0))


def test_overflow_loses_nothing():
    """One shard owns every large entry: its buckets overflow. What was sent
    plus the new memory equals the old memory plus the gradient."""
    strategy = tf_sparsesign.SparseSignStrategy(
        devices=DEVICES, density=0.25, aggregation="sharded",
        shard_capacity=1.0)
    with strategy.scope():
        var = tf.Variable(tf.zeros([64]))
        opt = keras.optimizers.SGD(0.0)
        opt.build([var])
    rng = np.random.default_rng(0)
    grads = rng.standard_normal((4, 64)).astype(np.float32) * 0.01
    grads[:, ::4] += 10.0 * np.sign(rng.standard_normal((4, 16)))

    @tf.function
    def step(g):
        def fn():
            r = tf.distribute.get_replica_context().replica_id_in_sync_group
            opt.apply_gradients([(tf.gather(g, r), var)])
        strategy.run(fn)

    agg = aggregator_of(opt)
    memory = np.zeros((4, 64), np.float32)
    total_overflow = 0
    for _ in range(3):
        step(tf.constant(grads))
        after = np.stack([m.numpy() for m in agg.state.memory_values(0)])
        e = memory + grads
        sent = (after == 0) & (e != 0)
        # Unsent entries keep their sum exactly; sent ones are cleared.
        np.testing.assert_array_equal(after[~sent], e[~sent])
        overflow = agg.state.read_counters()["overflow"] - total_overflow
        total_overflow += overflow
        k = agg.ks[0]
        assert overflow > 0
        # Replica 0's own count: K selected, the overflow given back.
        assert sent[0].sum() == k - overflow
        memory = after
    assert total_overflow > 0


def test_garbage_buckets_abstain_and_are_counted():
    adversary = Adversary("garbage", replicas=(1,))
    _, _, counters, _ = fit(aggregation="sharded", density=0.05,
                            on_invalid="drop", adversary=adversary)
    # Each of the 4 shards drops replica 1's bucket, every step.
    assert counters["dropped_rows"] == 3 * 4
    with pytest.raises(tf.errors.InvalidArgumentError, match="is invalid"):
        fit(aggregation="sharded", density=0.05, adversary=adversary)


def test_settings_fingerprint_covers_the_exchange():
    a = config_lib.SparseSignConfig()
    for changed in (dict(aggregation="sharded"), dict(downlink="topk"),
                    dict(shard_capacity=2.0)):
        b = config_lib.SparseSignConfig(**changed)
        assert a.fingerprint([10], [1]) != b.fingerprint([10], [1])
    with pytest.raises(ValueError, match="shard_capacity must be a number "
                                         ">= 1"):
        config_lib.SparseSignConfig(shard_capacity=0.5)
    with pytest.raises(ValueError, match="aggregation='sharded' votes "
                                         "signs"):
        config_lib.SparseSignConfig(aggregation="sharded",
                                    method="topk_values")


def test_auto_all_gathers_on_one_host_and_follows_the_time_model_across():
    _, _, _, agg = fit(steps=1, aggregation="auto", density=0.05)
    assert type(agg.exchange).__name__ == "AllGatherExchange"  # one host
    auto = config_lib.SparseSignConfig(aggregation="auto", wire="rice")
    for m in (2, 8, 64):
        parts = registry.choose(auto, False, 10**7, 10**5, m,
                                local_replicas=1)
        assert parts.exchange == policy.rank(
            ["allgather/rice", "sharded/rice"],
            policy.Workload(10**7, 10**5, m)).best.option.exchange
    # values (top-K SGD) are never sharded, whatever the byte model says
    values = config_lib.SparseSignConfig(aggregation="auto",
                                         method="topk_values")
    assert registry.choose(values, False, 10**7, 10**5, 64, 1).exchange == \
        "allgather"


@pytest.mark.parametrize("workers,wire", [(2, "int32"), (3, "rice")])
def test_sharded_multiworker_equals_single_process_allgather(tmp_path,
                                                             workers, wire):
    results = run_workers(workers, tmp_path, "--mode", "fit", "--steps", "3",
                          "--density", "0.1", "--aggregation", "sharded",
                          "--wire", wire, "--shard-capacity",
                          str(workers))  # C >= K: no overflow possible
    for rc, data, log in results:
        assert rc == 0 and "error" not in data, (data.get("error"), log)
        assert int(data["overflow"]) == 0
    devices = [f"/cpu:{i}" for i in range(workers)]
    strategy = tf_sparsesign.SparseSignStrategy(density=0.1, wire=wire,
                                                devices=devices)
    x, y = arrays(workers, 3)
    with strategy.scope():
        model = model_fn()
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    model.fit(x, y, batch_size=workers * BATCH_PER_WORKER, shuffle=False,
              verbose=0)
    for _, data, _ in results:
        for i, w in enumerate(model.get_weights()):
            np.testing.assert_array_equal(data[f"w{i}"], w)
