"""Held-out bits per byte of the GPT sweep against steps and against bits
sent, every configuration (method, optimizer, options) at its best seed-0
rate, mean over the seeds run at that rate; and the table docs/RESULTS.md
shows. Not library code: the sweep report's own selection and plots
(:func:`~tf_sparsesign.experiments.reporting.summarize`, ``curve_plots``),
applied to each ``options`` value of the CSV in turn, since a report
covers one.

    python scripts/transformer_curves.py docs/results/transformer
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from tf_sparsesign.experiments.reporting import curve_plots, summarize


def summary_over_options(rows):
    """:func:`summarize` of each options value's rows; a configuration
    with options has them in its label."""
    out = []
    for options in sorted({r["options"] for r in rows}):
        for s in summarize([r for r in rows if r["options"] == options]):
            s["options"] = options
            if options:
                s["label"] += f" ({options})"
            out.append(s)
    return out


def seed0_grid(rows, s) -> dict:
    """{lr: final bits per byte} of configuration ``s`` on seed 0."""
    return {float(r["lr"]): float(r["test_bits_per_byte"]) for r in rows
            if r["seed"] == "0" and r["step"] == r["steps_total"]
            and r["options"] == s["options"] and r["method"] == s["method"]
            and float(r["density"]) == s["density"]
            and r["optimizer"] == s["optimizer"]
            and (r["error_feedback"] == "True") == s["error_feedback"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    args = ap.parse_args()
    rows = list(csv.DictReader(open(args.folder / "results.csv")))
    summary = sorted(summary_over_options(rows), key=lambda s: s["bpb_mean"])
    curve_plots(summary, ["iid"], str(args.folder), key="bpb",
                ylabel="held-out bits per byte", stem="bits_per_byte")
    best_dense = min(s["bpb_mean"] for s in summary if s["method"] == "dense")
    print("| configuration | bpb at each rate, seed 0 | best rate | bpb, "
          "mean ± std (seeds) | vs best dense | bits per worker (run) |")
    print("|---|---|---|---|---|---|")
    for s in summary:
        grid = ", ".join((f"**{r:g}: {v:.3f}**" if r == s["lr"] else
                          f"{r:g}: {v:.3f}")
                         for r, v in sorted(seed0_grid(rows, s).items()))
        print(f"| {s['label']} | {grid} | {s['lr']:g} | {s['bpb_mean']:.3f} "
              f"± {s['bpb_std']:.3f} ({len(s['seeds'])}) | "
              f"{100 * (s['bpb_mean'] / best_dense - 1):+.1f}% | "
              f"{s['bits'][-1]:.3g} |")


if __name__ == "__main__":
    main()
