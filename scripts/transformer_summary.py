"""Summary table of ``transformer_prototype.py``'s CSV (issue 24).

One row per configuration (everything but lr and seed): the final held-out
bits per byte at every rate tried on seed 0 (the best in bold; ``edge``
when the best is at the end of the grid), then mean ± sample std over the
seeds run at that rate, the change against the best dense reference (mean
of its seeds), and bytes per worker per step on the ring (mean over the
run: int32 codes, Rice, packed at density 1) with how many times fewer than
dense fp32 that is.

Usage (the optional PNG: the curves of the configurations run on several
seeds, :func:`plot`)::

    python scripts/transformer_summary.py \
        docs/results/transformer-prototype/runs.csv [curves.png]
"""

from __future__ import annotations

import csv
import os
import statistics
import sys
from collections import defaultdict

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _prototype_core as core  # noqa: E402

#: Element counts of the GPT's 38 trainable tensors (``models.build_gpt``).
SIZES = []

CONFIG = ("method", "density", "memory", "beta1", "beta2", "wd", "warmup",
          "density_schedule", "avg_every", "lr_schedule", "tag",
          "small_dense", "vote", "rate_exponent")


def load(path):
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["step"] == r["steps_total"]]
    seen = {}                      # a run repeated: counted once (the last)
    for r in rows:
        seen[tuple(r.get(k) or DEFAULTS.get(k, "") for k in CONFIG) +
             (r["lr"], r["seed"])] = r
    rows = list(seen.values())
    for r in rows:
        r.setdefault("small_dense", "0")
        r["small_dense"] = r["small_dense"] or "0"
        r["vote"] = r.get("vote") or "sign"
        r["rate_exponent"] = r.get("rate_exponent") or "0.0"
    return rows


def _config(c, steps):
    """The :class:`_prototype_core.Config` of a table row's densities."""
    return core.Config(method=c["method"], lr=0.0, density=float(
        c["density"]), warmup=float(c["warmup"]),
        density_schedule=c["density_schedule"], steps=steps)


def run_bytes(c, steps):
    """Mean bytes per worker per step over the run (int32, Rice, packed;
    at density 1 the packed format), from the configuration:
    :func:`_prototype_core.wire_bytes` at each step's density, plus the
    momentum averaging's all-reduces."""
    cfg = _config(c, steps)
    per = np.mean([core.wire_bytes(SIZES, cfg.density_at(t), 4,
                                   int(c["small_dense"]))[:3]
                   for t in range(steps)], axis=0)
    avg = int(c["avg_every"])
    return list(per + (core.wire_bytes(SIZES, 1.0, 4)[3] / avg if avg
                       else 0.0))


def cumulative_bytes(c, steps):
    """Bytes per worker after each step 0..steps (Rice codes, packed at
    density 1; dense: fp32 ring all-reduce; plus momentum averaging)."""
    dense = core.wire_bytes(SIZES, 1.0, 4)[3]
    cfg = _config(c, steps)
    out, total = [0.0], 0.0
    for t in range(steps):
        if c["method"].startswith("dense"):
            total += dense
        else:
            total += core.wire_bytes(SIZES, cfg.density_at(t), 4,
                                     int(c["small_dense"]))[1]
            if int(c["avg_every"]) and (t + 1) % int(c["avg_every"]) == 0:
                total += dense
        out.append(total)
    return out


def summarize(rows):
    groups = defaultdict(list)
    for r in rows:
        groups[tuple(r[k] for k in CONFIG)].append(r)
    out = []
    for cfg, rs in groups.items():
        first = {float(r["lr"]): float(r["heldout_bpb"]) for r in rs
                 if r["seed"] == "0"}
        if not first:
            continue
        best = min(first, key=lambda lr: (first[lr], lr))
        at = [r for r in rs if float(r["lr"]) == best]
        vals = [float(r["heldout_bpb"]) for r in at]
        grid = sorted(first)
        out.append({
            "cfg": dict(zip(CONFIG, cfg)), "grid": grid, "first": first,
            "best": best, "edge": len(grid) > 1 and best in (grid[0],
                                                             grid[-1]),
            "mean": statistics.mean(vals),
            "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
            "seeds": sorted(int(r["seed"]) for r in at), "row": at[0]})
    return out


def name(c):
    m = c["method"]
    if m.startswith("dense"):
        text = {"dense-adamw": "dense AdamW", "dense-lion": "dense Lion"}[m]
    elif m == "s3gd-adamw":
        text = (f"S3GD-MV {float(c['density']) * 100:g}% "
                f"{'EF' if c['memory'] != 'none' else 'no EF'} + AdamW")
    elif float(c["density"]) >= 1 and not c["density_schedule"]:
        text = "Distributed Lion (density 1)"
    else:
        text = (f"sparse D-Lion {float(c['density']) * 100:g}%, memory "
                f"{c['memory']}")
    extra = []
    if float(c["warmup"]):
        extra.append(f"warm-up {float(c['warmup']) * 100:g}%")
    if c["density_schedule"]:
        extra.append(f"density {c['density_schedule']}")
    if int(c["avg_every"]):
        extra.append(f"momentum avg every {c['avg_every']}")
    if int(c["small_dense"]):
        extra.append(f"tensors ≤ {c['small_dense']} dense")
    if float(c["rate_exponent"]):
        extra.append(f"rate ∝ density^-{c['rate_exponent']}")
    if c["vote"] != "sign":
        extra.append(f"vote {c['vote']}")
    if c["lr_schedule"] != "constant":
        extra.append(f"lr {c['lr_schedule']}")
    if not m.endswith("adamw") and (c["beta1"], c["beta2"]) != ("0.9",
                                                                  "0.99"):
        extra.append(f"β {c['beta1']}/{c['beta2']}")
    if c["tag"]:
        extra.append(c["tag"])
    return text + (f" ({', '.join(extra)})" if extra else "")


def table(summary):
    dense = [s for s in summary if s["cfg"]["method"].startswith("dense")
             and s["cfg"]["lr_schedule"] == "constant"]
    ref = min(dense, key=lambda s: s["mean"]) if dense else None
    lines = ["| configuration | bpb at each lr, seed 0 | best lr | bpb "
             "mean ± std (seeds) | Δ vs best dense | bytes/step int32 | "
             "Rice | packed | × fewer than dense (int32 / Rice / packed) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in sorted(summary, key=lambda s: (s["cfg"]["method"] != "dense-"
                                            "adamw", s["cfg"]["method"],
                                            -float(s["cfg"]["density"]),
                                            name(s["cfg"]))):
        r = s["row"]
        dense_b = float(r["dense_wire_bytes"])
        cells = [name(s["cfg"]),
                 ", ".join((f"**{lr:g}: {v:.3f}**" if lr == s["best"] else
                            f"{lr:g}: {v:.3f}") for lr, v in
                           sorted(s["first"].items()))
                 + (" (edge)" if s["edge"] else ""),
                 f"{s['best']:g}",
                 f"{s['mean']:.3f} ± {s['std']:.3f} ({len(s['seeds'])})",
                 f"{100 * (s['mean'] / ref['mean'] - 1):+.1f}%" if ref
                 else "-"]
        wires = run_bytes(s["cfg"], int(r["steps_total"]))
        if s["cfg"]["method"].startswith("dense"):
            cells += [f"{dense_b:,.0f} (fp32)", "-", "-", "1"]
        else:
            cells += [f"{w:,.0f}" if w == w else "-" for w in wires]
            cells.append(" / ".join(f"{dense_b / w:.1f}" if w == w else "-"
                                    for w in wires))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def plot(path, summary, steps=300):
    """``path``: held-out bits per byte against the step and against the
    cumulative bytes per worker (int32 codes; dense: fp32 ring
    all-reduce), mean over the seeds at the best rate, for every
    configuration run on more than one seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(ARGS["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for s in summary:
        if len(s["seeds"]) < 2:
            continue
        c = s["cfg"]
        mine = [r for r in rows if tuple(r.get(k) or DEFAULTS.get(k, "")
                                         for k in CONFIG) ==
                tuple(c[k] for k in CONFIG) and float(r["lr"]) == s["best"]]
        curve = defaultdict(list)
        for r in mine:
            curve[int(r["step"])].append(float(r["heldout_bpb"]))
        xs = sorted(curve)
        ys = [statistics.mean(curve[x]) for x in xs]
        cum = cumulative_bytes(c, steps)
        label = f"{name(c)}, lr {s['best']:g}"
        axes[0].plot(xs, ys, label=label)
        axes[1].plot([cum[x] for x in xs[1:]], ys[1:], label=label)
    axes[0].set_xlabel("step")
    axes[1].set_xlabel("cumulative bytes per worker (Rice codes; dense: "
                       "fp32 ring all-reduce)")
    axes[1].set_xscale("log")
    for ax in axes:
        ax.set_ylabel("held-out bits per byte")
        ax.set_ylim(2.0, 4.5)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


#: Set by :func:`main`.
ARGS = {}
DEFAULTS = {"small_dense": "0", "vote": "sign", "rate_exponent": "0.0"}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ARGS["csv"] = argv[0]
    from tf_sparsesign.experiments import models

    SIZES[:] = [int(np.prod(v.shape)) for v in
                models.build_gpt().trainable_variables]
    summary = summarize(load(argv[0]))
    print("\n".join(table(summary)))
    if len(argv) > 1:
        plot(argv[1], summary)


if __name__ == "__main__":
    main()
