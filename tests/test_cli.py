"""The ``plan`` / ``sweep`` / ``report`` command line and its pieces.

Runs on the 4 logical CPU devices of conftest, offline (scikit-learn's
digits only; nothing is downloaded).
"""

import csv
import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import keras

import tf_sparsesign
from tf_sparsesign import __main__ as cli
from tf_sparsesign import _program, policy
from tf_sparsesign.experiments import (datasets, methods, optimizers,
                                      planning, runs)
from tf_sparsesign.policy import dense_ring_bytes


# -- plan -----------------------------------------------------------------

@pytest.mark.parametrize("text,bits_per_s", [
    ("1Gbit/s", 1e9), ("10 Gbps", 1e10), ("100Mbit/s", 1e8),
    ("1.5 kbit/s", 1500.0), ("100MB/s", 8e8), ("125 MBps", 1e9),
    ("1GiB/s", 8 * 2.0 ** 30), ("1e9", 1e9), ("56 bit/s", 56.0)])
def test_parse_bandwidth(text, bits_per_s):
    assert planning.parse_bandwidth(text) == pytest.approx(bits_per_s)


@pytest.mark.parametrize("text", ["fast", "10G", "-1Gbit/s", "1 Gbit/h"])
def test_parse_bandwidth_rejects(text):
    with pytest.raises(ValueError, match="not understood"):
        planning.parse_bandwidth(text)


@pytest.mark.parametrize("text,seconds", [("50ms", 0.05), ("2 s", 2.0),
                                          ("1min", 60.0), ("250us", 2.5e-4),
                                          ("0.1", 0.1)])
def test_parse_duration(text, seconds):
    assert planning.parse_duration(text) == pytest.approx(seconds)


def test_plan_rows_match_hand_computed_numbers():
    n, m = 1_000_000, 8
    rows = {r.name: r for r in planning.plan(n, m)}
    dense = rows["dense fp32 (all-reduce)"]
    # Ring all-reduce: 2 (M-1)/M * 4 N bytes = 2 * 7/8 * 4e6.
    assert dense.wire_bytes == 7_000_000
    assert dense.message_bits == 32_000_000
    one_bit = rows["signSGD-MV, 1 bit/coord (literature)"]
    assert one_bit.message_bits == 1_000_000
    assert one_bit.wire_bytes == 7 * 1_000_000 // 8          # 875,000
    lib = rows["signSGD-MV, this library (packed, 1.6 bits/coord)"]
    # 1e6 / 20 = 50,000 words of ternary digits + 1 fingerprint word.
    assert lib.message_bits == 32 * 50_001 == 1_600_032
    assert lib.wire_bytes == 7 * 4 * 50_001                  # 1,400,028
    assert lib.entropy_bits == pytest.approx(n * math.log2(3))
    s1 = rows["S3GD-MV 0.01, int32"]
    # K = 10,000 codes + 1 fingerprint word, 32 bits each; 7 peers' messages.
    assert s1.total_k == 10_000
    assert s1.message_bits == 32 * 10_001                    # 320,032
    assert s1.wire_bytes == 7 * 4 * 10_001                   # 280,028
    assert s1.entropy_bits / 10_000 == pytest.approx(9.08, abs=0.01)
    rice = rows["S3GD-MV 0.01, rice"]
    # Padded to rice_max_words(1e6, 1e4) = 2,987 words, + the fingerprint.
    assert rice.message_bits == 32 * (2_987 + 1)
    assert rice.wire_bytes == 7 * 4 * 2_988                  # 83,664
    s01 = rows["S3GD-MV 0.001, int32"]
    assert s01.wire_bytes == 7 * 4 * 1_001                   # 28,028
    assert s01.entropy_bits / 1_000 == pytest.approx(12.41, abs=0.01)
    auto = [r for n_, r in rows.items()
            if n_.startswith("S3GD-MV auto") and n_.endswith("int32")][0]
    assert auto.total_k == math.ceil(n / 96) == 10_417
    assert auto.wire_bytes == 7 * 4 * 10_418
    topk = rows["top-K values 0.01"]
    assert topk.wire_bytes == 7 * 4 * (1 + 2 * 10_000)        # codes+values


def test_plan_command_prints_hand_computed_times(capsys):
    assert cli.main(["plan", "--params", "1M", "--workers", "8",
                     "--bandwidth", "1Gbit/s", "--step-compute", "50ms",
                     "--steps-per-epoch", "100"]) == 0
    out = capsys.readouterr().out
    lines = {line.split("  ")[0]: line for line in out.splitlines()}
    dense = lines["dense fp32 (all-reduce)"]
    # 7,000,000 bytes * 8 / 1e9 bit/s = 56 ms; +50 ms compute; x100 = 5.6 s.
    assert "7,000,000" in dense and "56.00 ms" in dense
    assert "106.00 ms" in dense and "5.60 s" in dense
    s1 = lines["S3GD-MV 0.01, int32"]
    # 280,028 bytes -> 2.24 ms; 7e6 / 280,028 = 25.0x fewer than dense.
    assert "280,028" in s1 and "2.24 ms" in s1 and " 25.0 " in s1
    assert "52.24 ms" in s1
    assert "ring all-reduce" in out and "ring all-gather" in out


def test_plan_with_tensor_sizes_allocates_per_tensor(capsys):
    # The published sweep's MLP (784-128-10) at 1%: per-tensor ceilings
    # 1004 + 2 + 13 + 1 = 1020 codes, + 1 fingerprint word, 7 peers.
    sizes = [784 * 128, 128, 128 * 10, 10]
    (row,) = [r for r in planning.plan(None, 8, [0.01], sizes=sizes)
              if r.name == "S3GD-MV 0.01, int32"]
    assert row.total_k == 1004 + 2 + 13 + 1
    assert row.wire_bytes == 7 * 4 * 1021 == 28_588  # = 228,704 bits/step
    assert cli.main(["plan", "--sizes", "100352,128,1280,10", "--workers",
                     "8"]) == 0
    assert "28,588" in capsys.readouterr().out
    assert cli.main(["plan", "--params", "5", "--sizes", "2,2",
                     "--workers", "2"]) == 2
    assert "params = 5 but the sizes sum to 4" in capsys.readouterr().err


def test_plan_command_rejects_bad_units(capsys):
    assert cli.main(["plan", "--params", "1000", "--workers", "2",
                     "--bandwidth", "fast"]) == 2
    assert "'fast' not understood" in capsys.readouterr().err


PLAN = ["plan", "--sizes", "100352,128,1280,10", "--workers", "8"]


def imported_modules(stderr: str) -> set:
    """Top-level modules named by ``PYTHONPROFILEIMPORTTIME=1`` output."""
    return {line.rsplit("|", 1)[-1].strip().split(".")[0]
            for line in stderr.splitlines() if line.startswith("import time")}


@pytest.mark.parametrize("how", ["console script", "python -m"])
def test_plan_is_instant_and_imports_no_tensorflow(how):
    script = Path(sys.executable).with_name("tf-sparsesign")
    argv = ([str(script)] if how == "console script" else
            [sys.executable, "-m", "tf_sparsesign"])
    assert script.is_file(), f"console script missing: {script}"
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # TF's log lines would show
    # "Instant" is checked by what makes it so, the imports: no clock (a
    # loaded machine stretches a light start-up past a heavy one's time
    # on an idle one); the timeout only bounds a hang.
    proc = subprocess.run(argv + PLAN, capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = imported_modules(proc.stderr)
    assert "tf_sparsesign" in modules            # the check sees imports
    assert not modules & {"tensorflow", "keras", "tf_keras"}, modules
    assert "this library (packed" in proc.stdout and "rice" in proc.stdout
    assert "28,588" in proc.stdout               # same numbers as in-process


def test_importing_the_package_still_registers_the_optimizer():
    """Only the program's own `plan` process is light: a script (even one
    given the argument 'plan') gets the whole package, Keras registration
    included."""
    code = ("import sys, keras, tf_sparsesign; "
            "assert 'tensorflow' in sys.modules; "
            "print(keras.saving.get_registered_object("
            "'tf_sparsesign>SparseSignOptimizer').__name__)")
    proc = subprocess.run([sys.executable, "-c", code, "plan"],
                          capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip() == "SparseSignOptimizer", proc.stderr[-2000:]


@pytest.mark.parametrize("argv,orig,light", [
    (["/v/bin/tf-sparsesign", "plan"], ["py", "/v/bin/tf-sparsesign", "plan"],
     True),
    (["/v/bin/tf-sparsesign", "sweep"], ["py", "/v/bin/tf-sparsesign",
                                         "sweep"], False),
    (["-m", "plan"], ["py", "-X", "importtime", "-m", "tf_sparsesign",
                      "plan"], True),
    (["-m", "plan"], ["py", "-mtf_sparsesign", "plan"], True),
    (["-m", "info"], ["py", "-m", "tf_sparsesign", "info"], False),
    (["-m", "plan"], ["py", "-m", "mytool", "plan"], False),
    (["train.py", "plan"], ["py", "train.py", "plan"], False),
    (["-c", "plan"], ["py", "-c", "import tf_sparsesign", "plan"], False),
    ([""], ["py"], False),
])
def test_only_the_plan_program_is_light(argv, orig, light):
    assert _program.light_command(argv, orig) is light


@pytest.mark.parametrize("settings,wire", [
    (dict(density=0.05, wire="rice"), "rice"),
    (dict(density=1.0, error_feedback=False), "packed"),
    (dict(density=0.3, wire="packed"), "packed"),
])
def test_plan_rows_are_the_accounting_of_a_real_run(settings, wire):
    devices = [f"/cpu:{i}" for i in range(4)]
    strategy = tf_sparsesign.SparseSignStrategy(devices=devices, **settings)
    with strategy.scope():
        model = keras.Sequential([keras.Input((30,)), keras.layers.Dense(8),
                                  keras.layers.Dense(3)])
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    sizes = [30 * 8, 8, 8 * 3, 3]
    x = np.ones((32, 30), np.float32)
    model.fit(x, np.zeros((32, 3), np.float32), batch_size=16, verbose=0)
    stats = tf_sparsesign.communication_stats(model.optimizer)
    n, k = sum(sizes), sum(policy.allocate(sizes, settings["density"]))
    assert stats["message_bytes"] * 8 == policy.message_bits(wire, n, k)
    rows = planning.plan(None, 4, [settings["density"]], sizes=sizes,
                         wires=(wire,))
    row = rows[2] if settings["density"] == 1.0 else rows[3]
    assert stats["bytes_sent"] == 2 * row.wire_bytes        # 2 steps


# -- splits ---------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    return datasets.load("digits")


@pytest.mark.parametrize("workers,labels", [(4, 2), (5, 2), (8, 3)])
def test_noniid_split_gives_each_worker_only_its_labels(digits, workers,
                                                        labels):
    y = digits.y_train
    shards = datasets.split_workers(y, workers, "noniid", labels, seed=3)
    for w, shard in enumerate(shards):
        own = datasets.worker_labels(w, labels, 10)
        assert sorted(set(y[shard].tolist())) == own
    every = np.concatenate(shards)
    assert len(every) == len(set(every.tolist()))            # disjoint
    held = {c for w in range(workers)
            for c in datasets.worker_labels(w, labels, 10)}
    # Every sample of a held label belongs to some worker.
    assert len(every) == int(np.isin(y, sorted(held)).sum())
    idx = datasets.batch_indices(shards, steps=7, batch=16, seed=1)
    for w in range(workers):
        assert set(idx[:, w].ravel().tolist()) <= set(shards[w].tolist())


def test_iid_split_covers_all_labels(digits):
    y = digits.y_train
    shards = datasets.split_workers(y, 4, "iid", seed=0)
    for shard in shards:
        assert sorted(set(y[shard].tolist())) == list(range(10))
    every = np.sort(np.concatenate(shards))
    np.testing.assert_array_equal(every, np.arange(len(y)))


def test_bad_split_settings_say_what_was_wrong(digits):
    with pytest.raises(ValueError, match="split must be one of"):
        datasets.split_workers(digits.y_train, 2, "dirichlet")
    with pytest.raises(ValueError, match=r"labels_per_worker must be in "
                       r"\[1, 10\], got 11"):
        datasets.split_workers(digits.y_train, 2, "noniid", 11)
    with pytest.raises(ValueError, match="unknown method 'adam'"):
        methods.Method("adam")
    with pytest.raises(RuntimeError, match="64 workers need 64 logical"):
        runs.ensure_devices(64)


# -- sweep ----------------------------------------------------------------

def test_bits_in_csv_equal_the_accounting_of_the_same_run(digits):
    devices = runs.ensure_devices(2)
    s = runs.Setting("digits", "noniid", 2, 2, 16, 8, 6,
                            methods.Method("s3gd", 0.02), 0.01, 0)
    rows, stats = runs.train(digits, s, devices, eval_every=3)
    assert [r["step"] for r in rows] == [0, 3, 6]
    assert rows[-1]["bits_sent_per_worker"] == 8 * stats["bytes_sent"]
    assert rows[-1]["dense_bits_per_worker"] == 8 * stats["dense_bytes"]
    assert rows[-1]["message_bits_per_worker"] == (
        8 * stats["message_bytes"] * stats["steps"])
    # plan's arithmetic (one source of truth) predicts the same bytes.
    sizes = [64 * 16, 16, 16 * 10, 10]
    (row,) = [r for r in planning.plan(None, 2, [0.02], sizes=sizes)
              if r.name == "S3GD-MV 0.02, int32"]
    assert stats["bytes_sent"] == 6 * row.wire_bytes


def test_sweep_end_to_end_writes_csv_plots_report(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "--data", "digits", "--workers", "2", "--steps", "10",
            "--eval-every", "5", "--hidden", "32", "--batch", "16",
            "--methods", "dense,s3gd", "--densities", "0.05",
            "--lr", "dense=0.1", "--lr", "s3gd=0.003,0.01",
            "--splits", "iid,noniid", "--seeds", "0", "--no-progress",
            "--out", str(out)]
    with pytest.warns(UserWarning, match="more than signSGD"):
        assert cli.main(argv) == 0
    for name in ("results.csv", "report.md", "accuracy_vs_step.png",
                 "accuracy_vs_bits.png", "k_sensitivity.png"):
        assert (out / name).stat().st_size > 0, name
    with open(out / "results.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == runs.COLUMNS
        rows = list(reader)
    # 2 splits x (dense 1 lr + s3gd 2 lrs) x 3 evaluation points.
    assert len(rows) == 2 * 3 * 3
    n = 64 * 32 + 32 + 32 * 10 + 10                 # MLP 64-32-10: 2,410
    ks = policy.allocate([64 * 32, 32, 32 * 10, 10], 0.05)
    assert sum(ks) == 103 + 2 + 16 + 1 == 122
    for r in rows:
        step = int(r["step"])
        assert int(r["params"]) == n
        if r["method"] == "dense":      # ring all-reduce, M = 2: 4N bytes
            assert int(r["bits_sent_per_worker"]) == (
                8 * step * dense_ring_bytes(n, 2)) == 8 * step * 4 * n
        else:                           # (M-1) * (1 + sum K) int32 words
            assert int(r["bits_sent_per_worker"]) == step * 1 * 32 * 123
        assert 0.0 <= float(r["test_accuracy"]) <= 1.0
    report = (out / "report.md").read_text()
    assert "## iid" in report and "## noniid" in report
    assert "S3GD-MV 5% EF" in report and "(accuracy_vs_bits.png)" in report
    # Re-running skips every finished setting (no new rows).
    capsys.readouterr()
    assert cli.main(argv) == 0
    with open(out / "results.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    # The same setting with an option: its own runs, the report untouched,
    # and an options table side by side with the plain runs.
    before = (out / "report.md").read_text()
    lever = [a for a in argv if a not in ("dense,s3gd", "iid,noniid")]
    lever[lever.index("--methods") + 1:lever.index("--methods") + 1] = [
        "s3gd"]
    lever[lever.index("--splits") + 1:lever.index("--splits") + 1] = ["iid"]
    assert cli.main(lever + ["--options", "momentum=0.5",
                             "--no-report"]) == 0
    assert (out / "report.md").read_text() == before
    assert cli.main(["report"] + [a for a in lever[1:]
                                  if a != "--no-progress"] +
                    ["--all-options"]) == 0
    table = (out / "options.md").read_text()
    assert "| S3GD-MV 5% EF | `momentum=0.5` |" in table
    assert "| S3GD-MV 5% EF | - |" in table and "| dense SGD | - |" in table


# -- attack ---------------------------------------------------------------

def test_attack_command_writes_csv_plot_report_and_resumes(tmp_path, capsys):
    out = tmp_path / "attack"
    argv = ["attack", "--data", "digits", "--workers", "2", "--hidden", "8",
            "--batch", "8", "--steps", "4", "--density", "0.05", "--lr",
            "0.01", "--votes", "fd", "--attacks", "signflip,stale:2",
            "--hostile", "0,1", "--dense", "--seeds", "0", "--out", str(out)]
    with pytest.warns(UserWarning, match="more than signSGD"):
        assert cli.main(argv) == 0
    for name in ("attacks.csv", "report.md", "accuracy_vs_hostile.png"):
        assert (out / name).stat().st_size > 0, name
    with open(out / "attacks.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # fd: clean + 2 attacks; dense: clean + signflip (stale has no dense
    # form).
    got = sorted((r["method"], r["vote"], r["attack"], r["hostile"])
                 for r in rows)
    assert got == [("dense", "plain", "none", "0"),
                   ("dense", "plain", "signflip", "1"),
                   ("s3gd_mv", "fd", "none", "0"),
                   ("s3gd_mv", "fd", "signflip", "1"),
                   ("s3gd_mv", "fd", "stale:2", "1")]
    report = (out / "report.md").read_text()
    assert "### stale:2" in report and "| fd |" in report
    capsys.readouterr()
    assert cli.main(argv) == 0                     # resumes: nothing to run
    assert "acc=" not in capsys.readouterr().out
    with open(out / "attacks.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 5


def test_attack_command_rejects_unknown_attacks_and_rules(capsys):
    with pytest.raises(SystemExit):
        cli.main(["attack", "--attacks", "shout"])
    assert "unknown attack 'shout'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["attack", "--attacks", "signflip:3"])
    assert "takes no parameter" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["attack", "--votes", "plain,median"])
    assert "unknown vote rule ['median']" in capsys.readouterr().err


def test_old_sweep_csv_is_upgraded_with_model_and_options(tmp_path):
    from tf_sparsesign.experiments import sweep

    path = tmp_path / "results.csv"
    old = [c for c in runs.COLUMNS if c not in runs.DEFAULTS]
    row = {c: "0" for c in old}
    row.update(data="digits", split="iid", method="dense", density="1.0",
               error_feedback="False", lr="0.1", steps_total="3", step="3")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=old)
        w.writeheader()
        w.writerow(row)
    key = runs.row_key(row)
    assert key[-4:] == ("mlp", "", "sgd", "0")
    sweep.append_rows(str(path), [{**row, "model": "cnn",
                                   "options": "momentum=0.9"}])
    rows = sweep.read_rows(str(path))
    assert [r["model"] for r in rows] == ["mlp", "cnn"]
    assert [r["options"] for r in rows] == ["", "momentum=0.9"]
    assert runs.row_key(rows[0]) == key
    assert runs.parse_options(rows[1]["options"]) == {"momentum": 0.9}
    with pytest.raises(ValueError, match="name=value pairs"):
        runs.parse_options("momentum")


def test_cnn_model_is_the_authors_net_and_options_reach_the_run(digits):
    from tf_sparsesign.experiments import models

    cnn = models.build_model("cnn", 784, 0, 10)
    assert cnn.count_params() == 582_026    # 832 + 51,264 + 524,800 + 5,130
    with pytest.raises(ValueError, match="takes 28x28 images"):
        models.build_model("cnn", 64, 0, 10)
    devices = runs.ensure_devices(2)
    s = runs.Setting("digits", "iid", 2, 2, 8, 8, 2,
                     methods.Method("s3gd", 0.05), 0.01, 0, "mlp",
                     "momentum=0.5;vote=fd")
    rows, _ = runs.train(digits, s, devices, eval_every=2)
    assert rows[-1]["options"] == "momentum=0.5;vote=fd"
    assert runs.row_key({k: str(v) for k, v in rows[-1].items()}) == s.key()


def test_lr_schedule_option_decays_the_rate_over_the_run(digits):
    s = runs.Setting("digits", "iid", 2, 2, 8, 8, 4,
                     methods.Method("s3gd", 0.05), 0.01, 0, "mlp",
                     "lr_schedule=cosine")
    rate = optimizers.learning_rate(s.lr, s.steps, "cosine")
    assert [float(rate(i)) for i in (0, 2, 4)] == pytest.approx(
        [0.01, 0.005, 0.0])
    assert optimizers.learning_rate(s.lr, s.steps, "constant") == 0.01
    with pytest.raises(ValueError, match=r"lr_schedule must be one of "
                       r"\('constant', 'cosine'\), got 'step'"):
        optimizers.learning_rate(s.lr, s.steps, "step")
    devices = runs.ensure_devices(2)
    cosine, _ = runs.train(digits, s, devices, eval_every=4)
    constant, _ = runs.train(digits, dataclasses.replace(s, options=""),
                             devices, eval_every=4)
    assert cosine[-1]["options"] == "lr_schedule=cosine"
    assert cosine[-1]["test_loss"] != constant[-1]["test_loss"]
