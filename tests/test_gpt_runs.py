"""The language-model runs of ``tf-sparsesign sweep``: the offline corpus
and its split, the byte-level GPT, and one tiny run end to end through the
sweep (real strategy, 2 of conftest's logical CPU devices)."""

import csv
import doctest
import hashlib
import math

import numpy as np
import pytest

from tf_sparsesign import __main__ as cli
from tf_sparsesign import policy
from tf_sparsesign.experiments import methods, models, optimizers, runs, text


@pytest.mark.parametrize("module", [text, optimizers])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


def test_corpus_split_is_deterministic_and_covers_the_text():
    a, b = text.load_text("pydoc-topics"), text.load_text("pydoc-topics")
    raw = text.corpus_bytes("pydoc-topics")
    assert a.digest == b.digest == hashlib.sha256(raw).hexdigest()[:12]
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    # train + held out = the corpus, the last 10% held out.
    assert bytes(a.train) + bytes(a.heldout) == raw
    assert len(a.heldout) == round(0.1 * len(raw))
    assert len(raw) > 400_000                      # ~466 KB under 3.11
    # Consecutive non-overlapping windows, targets shifted by one byte.
    assert a.x_test.shape == ((len(a.heldout) - 1) // 64, 64)
    np.testing.assert_array_equal(a.x_test.ravel(),
                                  a.heldout[:a.x_test.size])
    np.testing.assert_array_equal(a.y_test.ravel(),
                                  a.heldout[1:a.x_test.size + 1])
    few = text.load_text("pydoc-topics", eval_windows=5)
    np.testing.assert_array_equal(few.x_test, a.x_test[:5])
    with pytest.raises(ValueError, match="unknown corpus 'wiki'"):
        text.load_text("wiki")
    with pytest.raises(ValueError, match=r"eval_windows must be in \[1, "):
        text.load_text("pydoc-topics", eval_windows=0)


def test_data_order_depends_only_on_the_seed():
    one = text.batch_starts(10_000, 64, 4, 30, 16, "iid", seed=3)
    np.testing.assert_array_equal(
        one, text.batch_starts(10_000, 64, 4, 30, 16, "iid", seed=3))
    assert not np.array_equal(
        one, text.batch_starts(10_000, 64, 4, 30, 16, "iid", seed=4))
    assert one.min() >= 0 and one.max() <= 10_000 - 65
    skew = text.batch_starts(10_000, 64, 4, 30, 16, "noniid", seed=3)
    edges = np.linspace(0, 10_000 - 64, 5)
    for w in range(4):
        assert edges[w] <= skew[:, w].min() and skew[:, w].max() < edges[
            w + 1]
    with pytest.raises(ValueError, match="split must be 'iid' or 'noniid'"):
        text.batch_starts(10_000, 64, 4, 3, 2, "dirichlet")


def test_windows_are_inputs_and_next_byte_targets():
    tokens = np.arange(200, dtype=np.uint8)
    x, y = text.windows(tokens, np.array([[0, 7], [100, 3]], np.int32), 8)
    assert x.shape == y.shape == (2, 2, 8)
    np.testing.assert_array_equal(x[1, 0], np.arange(100, 108))
    np.testing.assert_array_equal(y[1, 0], np.arange(101, 109))


def test_gpt_is_causal_with_the_documented_size():
    model = models.build_model("gpt", 64, 0, 256)
    assert model.count_params() == 470_784
    assert len(model.trainable_variables) == 38
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 64)).astype(np.int32)
    changed = x.copy()
    changed[:, 40:] = (changed[:, 40:] + 1) % 256
    a, b = np.asarray(model(x)), np.asarray(model(changed))
    assert a.shape == (2, 64, 256)
    np.testing.assert_allclose(a[:, :40], b[:, :40], atol=1e-5)
    assert np.abs(a[:, 40:] - b[:, 40:]).max() > 1e-3


def test_optimizer_choice_and_its_errors():
    assert type(optimizers.build("lion", 1e-3, 10, 0.1)).__name__ == "Lion"
    adamw = optimizers.build("adamw", 1e-3, 10)
    assert type(adamw).__name__ == "AdamW" and adamw.weight_decay == 0.0
    with pytest.raises(ValueError, match=r"options \['momentum'\] do not "
                       "apply to optimizer 'adamw'"):
        optimizers.build("adamw", 1e-3, 10, momentum=0.9)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        methods.Method("dense", optimizer="rmsprop")
    with pytest.raises(ValueError, match="trains the 'gpt' model"):
        runs.train(text.load_text("pydoc-topics"), runs.Setting(
            "pydoc-topics", "iid", 2, 2, 8, 2, 1, methods.Method("dense"),
            0.1, 0), runs.ensure_devices(2), 1)


def test_tiny_gpt_sweep_end_to_end(tmp_path, capsys):
    out = tmp_path / "lm"
    argv = ["sweep", "--model", "gpt", "--data", "pydoc-topics",
            "--workers", "2", "--batch", "2", "--steps", "2",
            "--eval-every", "1", "--methods", "s3gd@lion",
            "--densities", "0.01", "--lr", "s3gd@lion=1e-3",
            "--weight-decay", "0.1", "--options", "eval_windows=3",
            "--no-progress", "--out", str(out)]
    assert cli.main(argv) == 0
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["0", "1", "2"]
    n = 470_784
    k = sum(policy.allocate([int(np.prod(v.shape)) for v in models.build_gpt(
        ).trainable_variables], 0.01))
    for r in rows:
        assert (r["model"], r["optimizer"], r["weight_decay"]) == (
            "gpt", "lion", "0.1")
        assert r["label"] == "S3GD-MV 1% EF + Lion"
        assert int(r["params"]) == n
        assert float(r["test_bits_per_byte"]) == pytest.approx(
            float(r["test_loss"]) / math.log(2), rel=1e-6)
        # Ring all-gather, M = 2: one peer's (1 + sum K) int32 words.
        assert int(r["bits_sent_per_worker"]) == int(r["step"]) * 32 * (
            1 + k)
    assert 3.0 < float(rows[-1]["test_bits_per_byte"]) < 9.0
    assert "bpb=" in capsys.readouterr().out
    report = (out / "report.md").read_text()
    assert "| S3GD-MV 1% EF + Lion | 0.001 (0.001) |" in report
    assert (out / "bits_per_byte_vs_step.png").stat().st_size > 0
    assert cli.main(argv) == 0                    # resumes: nothing new
    with open(out / "results.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 3
