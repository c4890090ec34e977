"""``plan``'s run time, cost and break-even link (policy.roi,
experiments.plan_roi) against hand computations; bad prices get clear
errors; the figure is written; a trial's CSV turns steps into steps to the
dense run's loss; a trial's projection to another link is the time model's.
No training here."""

import csv
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tf_sparsesign import policy
from tf_sparsesign.experiments import plan_roi
from tf_sparsesign.trials import projection
from tf_sparsesign.trials.run import Run

ROOT = Path(__file__).resolve().parents[1]
N, K, M = 11_600_000, 116_000, 4
WORK = policy.Workload(N, K, M, forward_backward=0.1)
SLOW = policy.Link(bandwidth=100e6)


def test_run_cost_by_hand():
    dense, rice = policy.estimate(["dense", "allgather/rice"], WORK, 1000,
                                  policy.Prices(2.0, 0.09), link=SLOW)
    for est in (dense, rice):
        p = policy.predict(WORK, [est.option], link=SLOW)[0]
        per_second = 2.0 * M / 3600
        assert est.seconds == pytest.approx(1000 * p.seconds)
        assert est.compute == pytest.approx(per_second * 0.1 * 1000)
        assert est.communication == pytest.approx(per_second * p.comm * 1000)
        assert est.compression == pytest.approx(
            per_second * (p.seconds - 0.1 - p.comm) * 1000)
        assert est.cost == pytest.approx(
            est.compute + est.compression + est.communication + est.egress)
    # dense sends a ring all-reduce's 2 (M-1)/M * 4N bytes per step
    assert dense.bytes_per_step == 2 * (M - 1) / M * 4 * N
    assert dense.egress == pytest.approx(0.09 * M * dense.bytes_per_step
                                         * 1000 / 1e9)
    # the all-gather sends every other worker's message once
    sent = policy.exchange_bytes(N, K, M, "rice", "allgather")["sent"]
    assert rice.bytes_per_step == sent
    assert rice.cost < dense.cost


def test_break_even_is_where_the_step_times_cross():
    b = policy.break_even_bandwidth("allgather/rice", WORK)
    assert 1e8 < b < 1e11

    def gap(bw):
        return (policy.step_seconds_at("dense", WORK, bw)
                - policy.step_seconds_at("allgather/rice", WORK, bw))

    assert gap(b / 1.01) > 0 > gap(b * 1.01)   # faster below, slower above
    assert abs(gap(b)) < 1e-6
    # K = N: int32 codes send more bytes than the dense ring, and compress
    # too: never faster
    every = policy.Workload(1000, 1000, 2, forward_backward=0.0)
    assert policy.break_even_bandwidth("allgather/int32", every) == 0.0


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), True,
                                 "2"])
def test_bad_prices_are_refused(bad):
    with pytest.raises(ValueError, match="must be a finite number >= 0"):
        policy.Prices(worker_hour=bad)
    with pytest.raises(ValueError, match="steps must be"):
        policy.estimate(["dense"], WORK, 0)


def plan(*args):
    return subprocess.run([sys.executable, "-m", "tf_sparsesign", "plan",
                           "--params", "11.6M", "--workers", "4", *args],
                          capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def test_plan_prints_cost_and_break_even_and_draws(tmp_path):
    png = tmp_path / "roi.png"
    done = plan("--bandwidth", "1Gbit/s", "--step-compute", "100ms",
                "--steps", "10000", "--price-per-worker-hour", "2.5",
                "--egress-price-per-gb", "$0.09", "--densities", "0.01",
                "--plot", str(png))
    assert done.returncode == 0, done.stderr[-2000:]
    rows = plan_roi.roi_rows(N, [N], M, [0.01], None, 1e9, 0.1, 10_000,
                             policy.Prices(2.5, 0.09))
    text = done.stdout
    for r in rows:
        assert f"${r.estimate.cost:,.2f}" in text, (r, text)
    be = rows[1].break_even
    assert f"below {be / 1e9:.3g} Gbit/s" in text
    assert png.stat().st_size > 20_000


@pytest.mark.parametrize("args,message", [
    (("--price-per-worker-hour", "-3"), "expected a price >= 0"),
    (("--egress-price-per-gb", "cheap"), "expected a price >= 0"),
    (("--epochs", "3"), "--epochs needs --steps-per-epoch"),
    (("--bandwidth", "fast", "--steps", "10"), "bandwidth"),
    (("--trial", "/nonexistent/trial.csv"), "trial.csv"),
])
def test_plan_refuses_bad_input_clearly(args, message):
    done = plan(*args)
    assert done.returncode == 2
    assert message in done.stderr, done.stderr[-2000:]


def write_trial(path, curves):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["candidate", "lr", "step", "loss", "smoothed_loss",
                    "seconds", "bytes_per_step", "val_loss", "density"])
        for (name, density), losses in curves.items():
            for i, loss in enumerate(losses, 1):
                w.writerow([name, 0.1, i, loss, loss, 0.1, 1000, "",
                            density])


def test_plan_from_a_trial_counts_steps_to_the_dense_loss(tmp_path):
    path = tmp_path / "trial.csv"
    write_trial(path, {("dense", ""): [3, 2, 1.5, 1.2],
                       ("S3GD-MV 1%", 0.01): [3, 2.5, 1.8, 1.3, 1.19, 1.0],
                       ("S3GD-MV 0.1%", 0.001): [3, 2.8, 2.6, 2.5]})
    assert plan_roi.read_trial(path) == ({None: 4, 0.01: 5, 0.001: None},
                                         0.1)
    done = plan("--trial", str(path), "--price-per-worker-hour", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "to reach the dense run's final loss" in done.stdout
    lines = done.stdout.splitlines()
    assert any(line.startswith("S3GD-MV 0.1%") and "not reached" in line
               for line in lines)
    assert any(line.startswith("S3GD-MV 1%") and " 5 " in line
               for line in lines)


def fake_run(name, settings):
    return Run(name, settings, 0.1, [1.0] * 10, [0.2] * 10, [], 0.0, 0, N,
               M)


def test_trial_projection_is_the_time_model_at_that_link():
    runs = [fake_run("dense", {"dense": True}),
            fake_run("S3GD-MV 1%", {"density": 0.01})]
    got = projection.predicted_step_seconds(runs, 100e6)
    fb = 0.2  # the dense run's measured step
    k = math.ceil(0.01 * N)
    work = policy.Workload(N, k, M, forward_backward=fb)
    link = policy.Link(100e6)
    assert got["dense"] == policy.predict(
        policy.Workload(N, 0, M, forward_backward=fb), ["dense"],
        link=link)[0].seconds
    best = policy.rank(projection.SAME_UPDATE, work, link=link).best
    assert got["S3GD-MV 1%"] == best.seconds
    with pytest.raises(ValueError, match="bandwidth must be > 0"):
        projection.predicted_step_seconds(runs, 0)
