"""Held-out bits per byte of the GPT sweep against steps and against bits
sent, every configuration (method, optimizer, options) at its best seed-0
rate, mean over the seeds run at that rate; and the table docs/RESULTS.md
shows. Not library code: it reads the sweep's CSV.

    python scripts/transformer_curves.py docs/results/transformer
"""

from __future__ import annotations

import argparse
import collections
import csv
import statistics
from pathlib import Path


def configurations(rows):
    """{(label, options): {(lr, seed): [rows by step]}}."""
    out = collections.defaultdict(lambda: collections.defaultdict(list))
    for r in rows:
        out[(r["label"], r["options"])][(float(r["lr"]), int(r["seed"]))
                                         ].append(r)
    return out


def final(runs):
    return float(runs[-1]["test_bits_per_byte"])


def best_rate(runs_by_key):
    """The seed-0 rate with the lowest final bits per byte."""
    seed0 = {lr: final(runs) for (lr, seed), runs in runs_by_key.items()
             if seed == 0}
    return min(seed0, key=seed0.get), seed0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    args = ap.parse_args()
    rows = list(csv.DictReader(open(args.folder / "results.csv")))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_step, by_bits) = plt.subplots(1, 2, figsize=(13, 5))
    table = []
    for (label, options), runs_by_key in sorted(
            configurations(rows).items()):
        lr, seed0 = best_rate(runs_by_key)
        runs = [sorted(r, key=lambda x: int(x["step"]))
                for (rate, _), r in sorted(runs_by_key.items())
                if rate == lr]
        steps = [int(x["step"]) for x in runs[0]]
        mean = [statistics.mean(float(r[i]["test_bits_per_byte"])
                                for r in runs) for i in range(len(steps))]
        bits = [float(x["bits_sent_per_worker"]) for x in runs[0]]
        name = label + (" (" + options + ")" if options else "")
        by_step.plot(steps[1:], mean[1:], marker="o",
                     label=f"{name}, lr {lr:g}")
        by_bits.plot(bits[1:], mean[1:], marker="o", label=name)
        finals = [final(r) for r in runs]
        table.append((statistics.mean(finals), name, lr, seed0, finals,
                      bits[-1]))
    by_step.set(xlabel="step", ylabel="held-out bits per byte",
                title="against steps (mean over seeds; step 0: 8.3)")
    by_bits.set(xlabel="bits sent per worker (cumulative)", xscale="log",
                ylabel="held-out bits per byte", title="against bits sent")
    by_step.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.folder / "curves.png", dpi=110)
    best_dense = min(t[0] for t in table if t[1].startswith("dense"))
    print("| configuration | bpb at each rate, seed 0 | best rate | bpb, "
          "mean ± std (seeds) | vs best dense | bits per worker (run) |")
    print("|---|---|---|---|---|---|")
    for mean, name, lr, seed0, finals, bits in sorted(table):
        grid = ", ".join((f"**{r:g}: {v:.3f}**" if r == lr else
                          f"{r:g}: {v:.3f}") for r, v in sorted(seed0.items()))
        spread = statistics.stdev(finals) if len(finals) > 1 else 0.0
        print(f"| {name} | {grid} | {lr:g} | {mean:.3f} ± {spread:.3f} "
              f"({len(finals)}) | {100 * (mean / best_dense - 1):+.1f}% | "
              f"{bits:.3g} |")


if __name__ == "__main__":
    main()
