"""Keras 2 (tf_keras): real 2- and 3-worker jobs (processes on 127.0.0.1,
TF_CONFIG). tf_keras' own fit works under MultiWorkerMirroredStrategy; under
MultiWorkerSparseSignStrategy it votes, and the workers end exactly where
the same algorithm on as many logical CPUs in one process ends."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import tf_sparsesign

from multiworker import run_workers

WORKER = Path(__file__).resolve().parents[1] / "workers" / \
    "mw_fit_keras2.py"

pytestmark = pytest.mark.filterwarnings("ignore:.*more than signSGD-MV")


def single_process(workers, steps):
    """The same algorithm in one process: ``workers`` logical CPUs under
    SparseSignStrategy, the same global batches split the same way."""
    import sys

    sys.path.insert(0, str(WORKER.parent))
    from mw_fit_keras2 import BATCH_PER_WORKER, DENSITY, LR, arrays, model_fn

    strategy = tf_sparsesign.SparseSignStrategy(
        density=DENSITY, devices=[f"/cpu:{i}" for i in range(workers)])
    x, y = arrays(workers, steps)
    with strategy.scope():
        model = model_fn()
        model.compile(optimizer=tf.keras.optimizers.SGD(LR), loss="mse")
    model.fit(x, y, batch_size=workers * BATCH_PER_WORKER, shuffle=False,
              verbose=0)
    return model.get_weights()


def weights(data):
    return [data[f"w{i}"] for i in range(sum(k[0] == "w" for k in data))]


@pytest.mark.parametrize("workers,mode", [(3, "fit"), (2, "loop")])
def test_multiworker_keras2_matches_single_process(tmp_path, workers, mode):
    results = run_workers(workers, tmp_path, "--mode", mode, "--steps", "3",
                          worker=WORKER)
    for rc, data, log in results:
        assert rc == 0 and "error" not in data, (data.get("error"), log)
        assert int(data["steps"]) == 3
    first = weights(results[0][1])
    for _, data, _ in results[1:]:
        for a, b in zip(first, weights(data)):
            np.testing.assert_array_equal(a, b)  # workers agree exactly
    for a, b in zip(first, single_process(workers, 3)):
        np.testing.assert_array_equal(a, b)
