"""Real multi-worker jobs: 2 and 3 processes on 127.0.0.1 via TF_CONFIG."""

import numpy as np
import pytest
import keras

import tf_sparsesign

from multiworker import run_workers
from workers.mw_fit import BATCH_PER_WORKER, arrays, model_fn


def single_process_fit(workers, steps, density, accumulation=None,
                       **settings):
    """The same algorithm in one process: `workers` logical CPUs, the same
    global batches split the same way."""
    devices = [f"/cpu:{i}" for i in range(workers)]
    strategy = tf_sparsesign.SparseSignStrategy(density=density,
                                                devices=devices, **settings)
    x, y = arrays(workers, steps)
    with strategy.scope():
        model = model_fn()
        model.compile(optimizer=keras.optimizers.SGD(
            0.01, gradient_accumulation_steps=accumulation), loss="mse")
    model.fit(x, y, batch_size=workers * BATCH_PER_WORKER, shuffle=False,
              verbose=0)
    return model.get_weights()


def weights_of(data):
    return [data[f"w{i}"] for i in range(len([k for k in data
                                               if k.startswith("w")]))]


def state_of(data):
    """Weights and this worker's memories, by key."""
    return {k: v for k, v in data.items() if k[0] in "wm" and k[1:].isdigit()}


@pytest.mark.parametrize("workers", [2, 3])
def test_fit_multiworker_matches_single_process(tmp_path, workers):
    results = run_workers(workers, tmp_path, "--mode", "fit", "--steps", "3",
                          "--density", "0.1")
    for rc, data, log in results:
        assert rc == 0 and "error" not in data, (data.get("error"), log)
    first = weights_of(results[0][1])
    for _, data, _ in results[1:]:
        for a, b in zip(first, weights_of(data)):
            np.testing.assert_array_equal(a, b)  # workers agree exactly
    expected = single_process_fit(workers, 3, 0.1)
    for a, b in zip(first, expected):
        np.testing.assert_array_equal(a, b)
    assert int(results[0][1]["bytes_sent"]) > 0


def test_fd_vote_across_processes_matches_single_process(tmp_path):
    """vote="fd" with a sign flipper, past the plain warm-up: every process
    learns the same weights for the voters (the flipper's negative) and
    trains to the single-process result bit for bit."""
    from tf_sparsesign.aggregation.combine.fd import WARMUP_STEPS
    from tf_sparsesign.experiments import Adversary

    steps = WARMUP_STEPS + 6
    results = run_workers(3, tmp_path, "--mode", "fit", "--steps",
                          str(steps), "--density", "0.5", "--vote", "fd",
                          "--flipper", "2")
    for rc, data, log in results:
        assert rc == 0 and "error" not in data, (data.get("error"), log)
    weights = [data["fd_weights"] for _, data, _ in results]
    for w in weights[1:]:
        np.testing.assert_array_equal(weights[0], w)
    assert weights[0][2] < 0 < min(weights[0][:2]), weights[0]
    first = weights_of(results[0][1])
    for _, data, _ in results[1:]:
        for a, b in zip(first, weights_of(data)):
            np.testing.assert_array_equal(a, b)
    expected = single_process_fit(
        3, steps, 0.5, vote="fd",
        adversary=Adversary("signflip", replicas=(2,)))
    for a, b in zip(first, expected):
        np.testing.assert_array_equal(a, b)
    plain = single_process_fit(
        3, steps, 0.5, adversary=Adversary("signflip", replicas=(2,)))
    assert any(not np.array_equal(a, b) for a, b in zip(first, plain))


def test_wrapper_custom_loop_under_plain_mwms(tmp_path):
    results = run_workers(2, tmp_path, "--mode", "loop", "--wrapper",
                          "--steps", "2")
    for rc, data, log in results:
        assert rc == 0 and "error" not in data, (data.get("error"), log)
    a, b = weights_of(results[0][1]), weights_of(results[1][1])
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    # Each worker fed slice w of each global batch: the same split as the
    # single-process fit, so the same weights.
    for u, v in zip(a, single_process_fit(2, 2, 0.1)):
        np.testing.assert_array_equal(u, v)


def test_dead_worker_fails_within_timeout(tmp_path):
    """Worker 1 exits abruptly after 2 steps: worker 0's next step fails,
    from the lost connection (seconds) or at the latest at the collective
    timeout. The timeout is long enough that the workers' uneven start on
    a loaded machine never meets it before the kill; the clock runs from
    worker 0's last finished step, so start-up time is not counted."""
    timeout = 60
    results = run_workers(2, tmp_path, "--mode", "die", "--steps", "50",
                          "--timeout", str(timeout))
    rc0, data0, log0 = results[0]
    rc1, _, _ = results[1]
    assert rc1 == 3  # the one we killed
    assert rc0 not in (0, None), log0
    assert "error" in data0, log0
    err = str(data0["error"])
    assert any(s in err for s in ("Collective", "DEADLINE", "UNAVAILABLE",
                                  "unavailable", "timed out", "peer")), err
    # + 60 s for the error to reach the worker on a loaded machine
    assert float(data0["stuck_seconds"]) < timeout + 60, err


def test_mismatched_settings_fail_fast(tmp_path):
    """Same message length, different error feedback: the settings
    fingerprint in every message makes both workers fail at once. No
    clock: a worker left waiting for the other would fail at the
    collective timeout with another error, or be stopped by run_workers."""
    results = run_workers(2, tmp_path, "--mode", "fit", "--steps", "3",
                          "--error-feedback-worker1", "off")
    for rc, data, log in results:
        assert rc not in (0, None) and "error" in data, log
        assert "different settings" in str(data["error"]), data["error"]


def test_killed_worker_job_resumes_from_per_worker_backups(tmp_path):
    """Kill worker 1 mid-epoch 2 (of 3); the survivor fails at the collective
    timeout; the restarted job resumes from the epoch-1 backups (each worker
    its own directory, so each restores exactly its own memories) and ends
    with the same weights and memories as an uninterrupted job."""
    common = ("--mode", "backup", "--steps", "3", "--epochs", "3",
              "--timeout", "60")  # the survivor's bound; see the test above
    full = run_workers(2, tmp_path / "full", *common)
    backup = tmp_path / "backup"
    crashed = run_workers(2, tmp_path / "crash", *common, "--backup-dir",
                          str(backup), "--die-at", "1:1")
    assert crashed[1][0] == 3 and crashed[0][0] != 0
    assert sorted(p.name for p in backup.iterdir()) == ["worker_0",
                                                        "worker_1"]
    resumed = run_workers(2, tmp_path / "resume", *common, "--backup-dir",
                          str(backup))
    for (rc, data, log), (rc_f, data_f, log_f) in zip(resumed, full):
        assert rc == 0 and rc_f == 0, (log, log_f)
        a, b = state_of(data), state_of(data_f)
        assert sorted(a) == sorted(b) and any(k[0] == "m" for k in a)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("momentum", ["none", "lion"])
def test_gradient_accumulation_across_two_workers(tmp_path, momentum):
    """gradient_accumulation_steps=4 under MultiWorkerSparseSignStrategy:
    one exchange per 4 micro-steps, the same weights on both workers and
    as in one process (with worker momentum too)."""
    results = run_workers(2, tmp_path, "--mode", "fit", "--steps", "8",
                          "--density", "0.2", "--accumulation", "4",
                          "--worker-momentum", momentum)
    for rc, data, log in results:
        assert rc == 0 and "error" not in data, (data.get("error"), log)
        assert int(data["exchanges"]) == 2  # 8 micro-steps, A = 4
    first = weights_of(results[0][1])
    for a, b in zip(first, weights_of(results[1][1])):
        np.testing.assert_array_equal(a, b)
    expected = single_process_fit(2, 8, 0.2, accumulation=4,
                                  worker_momentum=momentum)
    for a, b in zip(first, expected):
        np.testing.assert_array_equal(a, b)
