"""Cost of each vote rule, side by side in one run (not a test).

    python benchmarks/votes.py                      # N = 1e6, 1e7; M = 8
    python benchmarks/votes.py --sizes 1e7 --workers 8 16 --repeat 7

For each N and M it times one step of every rule in ``VOTE_MODES`` (as
the all-gather exchange runs it: ``combine``, the sparse vote, plus the
rule's own bookkeeping, in ``combine`` or ``observe``/``apply``) on M rows
of K =
1% of N codes inside one ``tf.function``, and prints the median time and
the ratio to the plain majority vote as a markdown table. Times drift on a
shared machine; the ratios are the point (every rule is measured in the
same run).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_sparsesign import VOTE_MODES, ops  # noqa: E402
from tf_sparsesign.aggregation import registry  # noqa: E402
from tf_sparsesign.aggregation.probe import ScratchFactory  # noqa: E402
from tf_sparsesign.timing import median_seconds  # noqa: E402


def rows(n: int, m: int, density: float) -> tf.Tensor:
    rng = np.random.default_rng(0)
    k = max(1, int(density * n))
    return tf.stack([ops.sparse_sign_encode(
        tf.constant(rng.standard_normal(n, dtype=np.float32)), k)
        for _ in range(m)])


def time_rule(name: str, codes, n: int, repeat: int) -> float:
    rule = registry.load(registry.VOTES[name])(ScratchFactory(),
                                                codes.shape[0], "raise")

    @tf.function
    def step():
        update, _ = rule.combine(codes, None, n)
        if rule.learns:
            rule.apply(rule.observe(codes, update))
        return update.indices[:1]

    return median_seconds(step, repeat)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    ap.add_argument("--workers", nargs="+", type=int, default=[8])
    ap.add_argument("--density", type=float, default=0.01)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print("| N | M | K | " + " | ".join(f"{v} ms" for v in VOTE_MODES) +
          " | " + " | ".join(f"{v} / plain" for v in VOTE_MODES
                             if v != "plain") + " |")
    print("|---|---|---|" + "---|" * (2 * len(VOTE_MODES) - 1))
    for n in (int(s) for s in args.sizes):
        for m in args.workers:
            codes = rows(n, m, args.density)
            t = {v: time_rule(v, codes, n, args.repeat) for v in VOTE_MODES}
            print(f"| {n:.0e} | {m} | {codes.shape[1]} | " +
                  " | ".join(f"{t[v] * 1e3:.2f}" for v in VOTE_MODES) +
                  " | " + " | ".join(f"{t[v] / t['plain']:.2f}x"
                                     for v in VOTE_MODES if v != "plain") +
                  " |", flush=True)


if __name__ == "__main__":
    main()
