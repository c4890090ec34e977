"""tf_sparsesign.calibrate: bounded by construction (fixed sizes and
repetitions), every worker ends with the same profile, and nothing is left
behind; on 2 logical CPUs in one process and across 2 real workers."""

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest
import tensorflow as tf

import tf_sparsesign
from tf_sparsesign import policy
from tf_sparsesign.calibration import collectives as collectives_lib
from tf_sparsesign.calibration import compute
from tf_sparsesign.config import SparseSignConfig
from tf_sparsesign.experiments.cluster import LocalCluster

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = ["dense", "allgather/int32", "sharded/rice"]


def small_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((16,)),
                             keras.layers.Dense(32, activation="relu"),
                             keras.layers.Dense(4)])


def test_one_host_profile_is_complete_saved_and_leaves_nothing(tmp_path):
    strategy = tf_sparsesign.SparseSignStrategy(
        density=0.05, devices=["/cpu:0", "/cpu:1"])
    model = small_model()
    path = tmp_path / "profile.json"
    profile = tf_sparsesign.calibrate(strategy, model, tf.ones([8, 16]),
                                      path, options=OPTIONS, repeat=1)
    assert profile.num_replicas == 2 and profile.hosts == ("localhost",)
    assert profile.tf_version == tf.__version__
    assert set(profile.collectives) == set(policy.profile.KINDS)
    # Fixed sizes: exactly the sizes of the table, on every kind.
    assert {k: len(v) for k, v in profile.points.items()} == {
        k: len(v) for k, v in collectives_lib.SIZES.items()}
    assert set(profile.compute) == {
        "dense_apply", "check_finite", "encode/allgather", "apply",
        "message/allgather/int32", "host_step/allgather/int32",
        "encode/sharded", "message/sharded/rice", "host_step/sharded/rice"}
    assert profile.forward_backward > 0
    assert profile.sizes == (16 * 32, 32, 32 * 4, 4)
    assert profile.total_k == sum(policy.allocate(profile.sizes, 0.05))
    assert set(profile.stages) == {"collectives", "slowdown", "compute"}
    assert "1 worker process(es) on the timing host" in profile.sharing
    assert policy.load_profile(path) == profile
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profile.json"]
    # The model's own variables are untouched, and the scratch state goes.
    before = [v.numpy().copy() for v in model.trainable_variables]
    del profile
    gc.collect()
    for v, b in zip(model.trainable_variables, before):
        assert (v.numpy() == b).all()
    # The predictions read it.
    loaded = policy.load_profile(path)
    (pred,) = policy.predict(policy.Workload(676, 36, 2),
                             ["sharded/rice"], loaded)
    assert pred.seconds > 0 and pred.notes == ()


def test_without_a_model_the_given_sizes_are_timed():
    strategy = tf_sparsesign.SparseSignStrategy(
        density=0.01, devices=["/cpu:0", "/cpu:1"])
    profile = tf_sparsesign.calibrate(strategy, sizes=[4000, 30],
                                      options=["allgather/rice"], repeat=1)
    assert profile.sizes == (4000, 30) and profile.forward_backward is None
    assert set(profile.compute) == {
        "check_finite", "encode/allgather", "apply",
        "message/allgather/rice", "host_step/allgather/rice"}


def test_a_sharded_only_calibration_still_times_the_shared_parts():
    options = [policy.Option.parse("sharded/rice")]
    assert [o.name for o in compute.with_shared_parts(options)] == [
        "sharded/rice", "allgather/rice"]
    assert compute.measurements(options) == [
        ("message/sharded/rice", "tiny"), ("host_step/sharded/rice", "tiny"),
        ("apply", "tiny"), ("message/sharded/rice", "real"),
        ("host_step/sharded/rice", "real"), ("encode/sharded", "real"),
        ("check_finite", "real"), ("apply", "real")]


def test_the_shard_worker_runs_one_shard_of_m():
    config = SparseSignConfig(density=0.05, wire="rice",
                              aggregation="sharded")
    probe = compute.ShardWorkerProbe(config, [(40, 10)], 4)
    result = probe.parts()["host_step"]()
    # One shard's vote, decoded as the M shard messages it gathers: every
    # index is in the global space, and the update is not empty.
    assert int(tf.size(result.update.indices)) > 0
    assert int(tf.reduce_max(result.update.indices)) < 400


WORKER = """
import json, sys
import tensorflow as tf, keras, tf_sparsesign
strategy = tf_sparsesign.MultiWorkerSparseSignStrategy(
    density=0.05, timeout_seconds=120)
with strategy.scope():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8)])
profile = tf_sparsesign.calibrate(
    strategy, model, tf.ones([4, 16]), sys.argv[1],
    options=["allgather/rice", "sharded/int32"], repeat=1)
print("calibrated", profile.seconds, flush=True)
"""


def test_two_workers_end_with_the_same_profile(tmp_path):
    paths = [tmp_path / f"p{i}.json" for i in range(2)]
    with LocalCluster(2, lambda i: [sys.executable, "-c", WORKER,
                                    str(paths[i])], cwd=ROOT, quiet=True,
                      log_dir=tmp_path / "logs") as cluster:
        codes = cluster.wait(timeout=240)
        cluster.report_failures(codes)
    assert codes == [0, 0]
    texts = [p.read_text() for p in paths]
    assert texts[0] == texts[1]
    profile = policy.Profile.from_json(texts[0])
    assert profile.num_replicas == 2 and len(profile.hosts) == 2
    # One host: one worker timed the parts, the other waited.
    assert profile.sharing.startswith("2 worker process(es) on the timing")
    assert json.loads(texts[0])["points"]["all_to_all"][0][0] == 8
    assert not list(tmp_path.glob("*.tmp"))


def test_timing_helpers_reject_what_they_cannot_time():
    with pytest.raises(ValueError, match="unknown option"):
        tf_sparsesign.calibrate(tf.distribute.get_strategy(),
                                options=["allgather/zip"])


def test_calibrate_command_on_one_host(tmp_path):
    out = tmp_path / "p.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tf_sparsesign", "calibrate", "--sizes",
         "3000,20", "--options", "allgather/int32", "--repeat", "1",
         "--out", str(out)], capture_output=True, text=True, cwd=ROOT,
        timeout=300, env={k: v for k, v in os.environ.items()
                          if k != "TF_CONFIG"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "calibrated M = 1 on 1 host(s)" in proc.stdout
    assert "all_gather" in proc.stdout and str(out) in proc.stdout
    profile = policy.load_profile(out)
    assert profile.sizes == (3000, 20)
    plan = subprocess.run(
        [sys.executable, "-m", "tf_sparsesign", "plan", "--sizes",
         "3000,20", "--workers", "1", "--profile", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert f"profile taken {profile.taken}" in plan.stdout


def test_default_options_leave_packed_signs_out_at_low_density():
    from tf_sparsesign.calibration import default_options

    assert "allgather/packed" not in default_options(1_000_000, 10_000)
    assert "allgather/packed" in default_options(1_000_000, 30_000)
    assert default_options(1_000_000, 10_000)[0] == "dense"
