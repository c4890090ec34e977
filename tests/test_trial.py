"""tf_sparsesign.trial: every candidate from the same weights and batches;
the time-to-target projection is its own CSV's arithmetic; a diverging
candidate is said to diverge, never to be faster; the files are written."""

import csv

import numpy as np
import pytest
import keras
from sklearn.datasets import load_digits

import tf_sparsesign
from tf_sparsesign.experiments import trial_cli
from tf_sparsesign.trials import parse, report
from tf_sparsesign.trials.run import search_rate

DEVICES = ["/cpu:0", "/cpu:1"]


def build():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")[:1024]
    model = keras.Sequential([keras.Input((64,)),
                              keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))
    return model, (x, y.astype("int32")[:1024])


def run(tmp_path, candidates, steps=40):
    return tf_sparsesign.trial(
        build, steps=steps, candidates=candidates, batch_size=64,
        strategy=tf_sparsesign.SparseSignStrategy(dense=True,
                                                  devices=DEVICES),
        price_per_worker_hour=2.0, egress_price_per_gb=0.09, out=tmp_path,
        verbose=0)


CANDIDATES = ["dense", parse("s3gd:0.05", lr=0.01),
              parse("s3gd:0.05;seed=1", lr=1e4)]  # a rate that explodes


def test_trial_reports_projection_divergence_and_files(tmp_path):
    result = run(tmp_path, CANDIDATES)
    dense, good, bad = result.outcomes
    assert [r.name for r in result.runs][0] == "dense"
    assert bad.diverged and bad.steps_to_target is None
    assert any("diverged" in line for line in result.verdict)
    assert good.steps_to_target is not None
    # the projection is the CSV's own arithmetic
    rows = list(csv.DictReader(open(tmp_path / "trial.csv")))
    width = report.window(40)
    for out in (dense, good):
        mine = [r for r in rows if r["candidate"] == out.name]
        losses = [float(r["loss"]) for r in mine]
        curve = report.smoothed(losses, width)
        assert abs(curve[-1] - float(mine[-1]["smoothed_loss"])) < 1e-9
        first = next(i for i, v in enumerate(curve, 1)
                     if v <= result.target)
        assert first == out.steps_to_target
        assert out.seconds_to_target == pytest.approx(
            first * out.step_seconds)
        cost = 2.0 * 2 * out.step_seconds / 3600 + \
            0.09 * 2 * out.bytes_per_step / 1e9
        assert out.cost_to_target == pytest.approx(first * cost)
    dense_rows = [r for r in rows if r["candidate"] == "dense"]
    assert result.target == pytest.approx(
        float(dense_rows[-1]["smoothed_loss"]))
    assert (tmp_path / "trial.png").stat().st_size > 10_000
    assert "Recommendation:" in (tmp_path / "verdict.txt").read_text()


def test_trial_is_reproducible(tmp_path):
    a = run(tmp_path / "a", CANDIDATES[:2], steps=20)
    b = run(tmp_path / "b", CANDIDATES[:2], steps=20)
    for x, y in zip(a.runs, b.runs):
        np.testing.assert_array_equal(x.losses, y.losses)
        assert x.bytes_per_step == y.bytes_per_step
    assert [o.steps_to_target for o in a.outcomes] == \
        [o.steps_to_target for o in b.outcomes]


def test_rate_search_brackets_its_best():
    best, tried = search_rate(lambda r: (np.log10(r) + 2.4) ** 2)
    rates = [r for r, _ in tried]
    assert min(rates) < best < max(rates)
    assert best == pytest.approx(1e-2 / 3, rel=1e-2)  # 10^-2.4 ~ 4e-3
    # the best at an edge of the coarse grid: the grid grows
    best, tried = search_rate(lambda r: -r if r < 1 else np.inf)
    assert best < max(r for r, _ in tried)


def test_candidate_tokens_and_cli_errors(capsys):
    assert parse("dlion").settings["worker_momentum"] == "lion"
    assert parse("s3gd:0.01").settings["aggregation"] == "auto"
    with pytest.raises(ValueError, match="needs a density"):
        parse("s3gd")
    with pytest.raises(ValueError, match="unknown candidate 'adam'"):
        parse("adam")
    code = trial_cli._trial(trial_cli_args(price_per_worker_hour=-1.0))
    assert code == 2 and "must be a price >= 0" in capsys.readouterr().err
    code = trial_cli._trial(trial_cli_args(bandwidth="fast"))
    assert code == 2
    with pytest.raises(ValueError, match="MODULE:FUNCTION"):
        trial_cli.load_function("nofunction")


def trial_cli_args(**changed):
    import argparse

    args = dict(function="tests/test_trial.py:build", steps=1,
                candidates="dense", replicas=None, batch_size=8,
                search_steps=2, eval_every=None, bandwidth=None,
                profile=None, price_per_worker_hour=None,
                egress_price_per_gb=None, seed=0, out="x")
    args.update(changed)
    return argparse.Namespace(**args)


def test_the_command_runs_a_trial(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "tf_sparsesign", "trial",
         "tests/test_trial.py:build", "--steps", "6", "--replicas", "2",
         "--candidates", "dense,s3gd:0.05", "--search-steps", "3",
         "--out", str(tmp_path)], cwd=root, capture_output=True, text=True,
        timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Recommendation:" in done.stdout
    assert (tmp_path / "trial.csv").exists()
