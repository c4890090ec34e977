"""``aggregation="auto"`` / ``wire="auto"`` across real worker processes:
every worker makes the same choice, and training is bit-identical to the
option it chose set explicitly (the options ``auto`` weighs give the same
update)."""

import numpy as np
import pytest

from multiworker import run_workers

# 16 steps: with two contenders the trial takes 2 x ROUNDS = 8 of them.
STEPS = "16"


@pytest.mark.parametrize("workers", [2, 3])
def test_auto_equals_the_option_it_chose(tmp_path, workers):
    # capacity = M: a bucket holds every code, so the sharded exchange
    # never gives codes back and every option gives the same update
    common = ("--mode", "fit", "--steps", STEPS, "--density", "0.1",
              "--shard-capacity", str(workers))
    auto = run_workers(workers, tmp_path / "auto", *common,
                       "--aggregation", "auto", "--wire", "auto")
    for rc, data, log in auto:
        assert rc == 0 and "error" not in data, (data.get("error"), log)
        # at this size the model cannot tell int32 from Rice: timed
        assert "auto kept exchange" in log, log
    options = {str(data["option"]) for _, data, _ in auto}
    assert len(options) == 1, options  # every worker chose the same
    exchange, wire = options.pop().split("/")
    fixed = run_workers(workers, tmp_path / "fixed", *common,
                        "--aggregation", exchange, "--wire", wire)
    for rc, data, log in fixed:
        assert rc == 0 and "error" not in data, (data.get("error"), log)
    for (_, a, _), (_, b, _) in zip(auto, fixed):
        weights = sorted(k for k in a if k.startswith("w"))
        assert weights
        for key in weights:
            np.testing.assert_array_equal(a[key], b[key])
