"""probe.py: the real parts, callable one by one on scratch state, for
timing; the real model is never touched."""

import numpy as np
import pytest
import tensorflow as tf

from tf_sparsesign.aggregation.probe import StepProbe
from tf_sparsesign.config import SparseSignConfig
from tf_sparsesign.timing import interleaved_medians, median_seconds


@pytest.mark.parametrize("settings", [
    dict(density=0.05), dict(density=0.05, wire="rice",
                             aggregation="sharded"),
    dict(density=1.0, error_feedback=False)])
def test_every_part_runs_at_the_given_sizes(settings):
    probe = StepProbe(SparseSignConfig(**settings), [(30, 20), (20,)], 4,
                      sgd="sharded" not in settings.values())
    parts = probe.parts()
    assert set(parts) == {"check_finite", "encode", "message", "host_step",
                          "apply"}
    result = parts["host_step"]()
    touched = int(tf.size(result.update.indices))
    if settings["density"] < 1:  # four random messages touch more than K
        assert touched > sum(probe.aggregator.ks)
    assert touched > 0
    for name, fn in parts.items():
        assert median_seconds(fn, repeat=1) > 0, name


def test_timing_helpers_interleave_and_check_their_arguments():
    calls = []
    medians = interleaved_medians({"a": lambda: calls.append("a"),
                                   "b": lambda: calls.append("b")},
                                  repeat=2, warmup=1)
    assert calls == ["a", "b"] * 3 and set(medians) == {"a", "b"}
    with pytest.raises(ValueError, match="repeat must be >= 1"):
        median_seconds(lambda: None, repeat=0)
    x = tf.Variable(np.ones(3, np.float32))
    StepProbe(SparseSignConfig(density=0.5), [(3,)], 2)  # not x
    np.testing.assert_array_equal(x.numpy(), np.ones(3))
