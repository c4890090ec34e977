"""Files saved by earlier versions still load with today's code.

``tests/data/legacy_wrapper.keras`` was written by commit 8f0774e (before
the package was reorganised) with ``tests/data/make_legacy_keras.py``: a
``SparseSignOptimizer`` (momentum SGD inside, weighted vote) trained for
two steps on 4 logical CPUs under ``MirroredStrategy``.
"""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import keras

import tf_sparsesign
from tf_sparsesign.integration.routing import aggregator_of

DATA = Path(__file__).resolve().parent / "data"
DEVICES = [f"/cpu:{i}" for i in range(4)]


@pytest.mark.filterwarnings("ignore:tf_sparsesign. vote='weighted'")
def test_legacy_keras_file_loads_and_resumes_exactly():
    expected = np.load(DATA / "legacy_expected.npz")
    strategy = tf.distribute.MirroredStrategy(DEVICES)
    with strategy.scope():
        model = keras.models.load_model(DATA / "legacy_wrapper.keras")
    opt = model.optimizer
    assert isinstance(opt, tf_sparsesign.SparseSignOptimizer)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_array_equal(w, expected[f"w{i}"])
    # Slots, iterations, counters and reliability counts, in order.
    saved = sorted(k for k in expected.files if k.startswith("opt_"))
    assert len(saved) == len(opt.variables)
    for key, var in zip(saved, opt.variables):
        np.testing.assert_array_equal(var.numpy(), expected[key],
                                      err_msg=var.path)
    # Every replica's own error-feedback memory.
    memories = [expected[f"m{i}"] for i in range(len(model.get_weights()))]
    agg = aggregator_of(opt)
    for slot, want in enumerate(memories):
        got = np.stack([m.numpy() for m in agg.state.memory_values(slot)])
        assert not np.array_equal(got[0], got[1])  # replicas differ
        np.testing.assert_array_equal(got, want)
    # One more step reaches the weights the old code computed.
    rng = np.random.default_rng(42)
    x = rng.standard_normal((48, 6)).astype("float32")
    y = rng.standard_normal((48, 2)).astype("float32")
    model.fit(x[32:], y[32:], batch_size=16, shuffle=False, verbose=0)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_array_equal(w, expected[f"next_w{i}"])
