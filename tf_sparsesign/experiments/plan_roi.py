"""``tf-sparsesign plan``'s return-on-investment section: per option, the
run's wall time and cost (compute, compression, communication, egress) and
the break-even bandwidth (the link speed below which it beats dense), from
the time model (:mod:`tf_sparsesign.policy.roi`); ``--plot`` draws the
figure, ``--trial`` turns steps into steps *to the dense run's loss* (from
a :func:`tf_sparsesign.trial` CSV). No TensorFlow.

Example:

>>> rows = roi_rows(1_000_000, [1_000_000], 4, [0.01], None, 1e9, 0.05,
...                 1000, policy.Prices(2.0, 0.09))
>>> [r.label for r in rows]
['dense', 'S3GD-MV 1%']
"""

from __future__ import annotations

import csv
import dataclasses
import math

import numpy as np

from .. import policy
from .plan_times import aligned
from .planning import fmt_time

#: Options S3GD-MV may use (they give the same update; the fastest shown).
SAME_UPDATE = ("allgather/int32", "allgather/rice", "allgather/packed",
               "sharded/int32", "sharded/rice")
#: Link speeds the figure spans (bits per second).
FIGURE_RANGE = (1e7, 1e11)


@dataclasses.dataclass(frozen=True)
class RoiRow:
    """One line of the section: ``label``, its :class:`~tf_sparsesign.
    policy.RunEstimate` over ``steps`` steps (to the target with a trial;
    None: the trial's run did not reach it), the workload and the
    break-even bandwidth (None for dense)."""

    label: str
    density: float | None
    option: str
    steps: int | None
    estimate: policy.RunEstimate | None
    workload: policy.Workload
    break_even: float | None


def _fastest(work, profile, link) -> str:
    """The same-update option the time model predicts fastest."""
    options = [o for o in SAME_UPDATE
               if o != "allgather/packed" or
               policy.packed_sign_words(work.num_elements)
               <= 2 * work.total_k]
    return policy.rank(options, work, profile,
                       link=link).best.option.name


def roi_rows(n, sizes, workers, densities, profile, bandwidth, fb, steps,
             prices, trial_steps=None) -> list:
    """Dense and S3GD-MV at each of ``densities``, over ``steps`` steps,
    or, with ``trial_steps`` (``{density or None: steps to the target or
    None}``, from :func:`read_trial`), over the steps each needed to reach
    the dense run's loss."""
    link = None if profile is not None else policy.Link(bandwidth)
    rows = []
    for d in (None, *densities):
        k = (0 if d is None else
             sum(policy.allocate(sizes, d, num_replicas=workers)))
        work = policy.Workload(n, k, workers, forward_backward=fb)
        option = "dense" if d is None else _fastest(work, profile, link)
        run_steps = steps if trial_steps is None else trial_steps.get(d)
        est = (policy.estimate([option], work, run_steps, prices, profile,
                               link)[0] if run_steps else None)
        rows.append(RoiRow(
            "dense" if d is None else f"S3GD-MV {_pct(d)}", d, option,
            run_steps, est, work,
            None if d is None else
            policy.break_even_bandwidth(option, work, profile)))
    return rows


def link_text(bandwidth, profile) -> str:
    """Which link the run's numbers are for."""
    return ("the profile's measured collectives" if profile is not None
            else _speed(bandwidth))


def format_roi(rows, bandwidth, prices, trial: bool, profile=None) -> str:
    """The section's text."""
    what = ("to reach the dense run's final loss (trial)" if trial else
            f"for {rows[0].steps:,} steps")
    lines = ["", f"Run time and cost {what} (time model; "
             f"${prices.worker_hour:g} per worker-hour, "
             f"${prices.egress_per_gb:g} per GB sent):", ""]
    head = ["option", "exchange", "steps", "run time", "cost", "compute",
            "compression", "communication", "egress", "break-even link"]
    table = [head]
    for r in rows:
        e = r.estimate
        money = ([_money(v) for v in (e.cost, e.compute, e.compression,
                                       e.communication, e.egress)]
                 if e else ["not reached"] + [""] * 4)
        table.append([r.label, r.option, f"{r.steps:,}" if r.steps else "-",
                      fmt_time(e.seconds) if e else "-", *money,
                      "" if r.break_even is None else
                      _break_even(r.break_even)])
    lines += aligned(table)
    lines.append(f"break-even link: S3GD-MV's step is shorter than dense's "
                 f"on links slower than this (this run: "
                 f"{link_text(bandwidth, profile)}).")
    return "\n".join(lines)


def read_trial(path) -> tuple:
    """``({density or None (dense): steps to reach dense's final smoothed
    loss, or None}, the dense run's median measured step seconds)`` from a
    trial's CSV (``trial.csv``)."""
    curves: dict = {}
    seconds = []
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                d = row.get("density", "")
                key = None if d in ("", None) else float(d)
                curves.setdefault(key, []).append(
                    (int(row["step"]), float(row["smoothed_loss"])))
                if key is None:
                    seconds.append(float(row["seconds"]))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path} is not a trial CSV (tf_sparsesign.trial's "
                         f"trial.csv with a density column): {exc}") from None
    if None not in curves:
        raise ValueError(f"{path} has no dense run (the trial's reference)")
    target = sorted(curves[None])[-1][1]
    out = {}
    for key, points in curves.items():
        hit = [s for s, loss in sorted(points) if loss <= target]
        out[key] = hit[0] if hit and math.isfinite(target) else None
    return out, float(np.median(seconds))


def plot_roi(path, rows, bandwidth, profile, trial: bool) -> None:
    """The decision figure: step time against link speed (left, log
    scales, this link and the break-even points marked) and the run's cost
    per option (right, stacked)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 6))
    speeds = np.logspace(*np.log10(FIGURE_RANGE), 60)
    for j, r in enumerate(rows):
        times = [policy.step_seconds_at(r.option, r.workload, b, profile)
                 for b in speeds]
        left.plot(speeds / 1e9, times, label=_legend(r),
                  lw=2.5 if r.density is None else 1.8)
        if r.break_even and math.isfinite(r.break_even) and \
                FIGURE_RANGE[0] <= r.break_even <= FIGURE_RANGE[1]:
            t = policy.step_seconds_at(r.option, r.workload, r.break_even,
                                       profile)
            left.plot([r.break_even / 1e9], [t], "ko")
            left.annotate(f"break-even\n{_speed(r.break_even)}",
                          (r.break_even / 1e9, t), textcoords="offset "
                          "points", xytext=(-70, 14 + 26 * (j % 2)),
                          fontsize=8, arrowprops=dict(arrowstyle="-",
                                                      color="grey"))
    if profile is None:
        left.axvline(bandwidth / 1e9, color="grey", ls="--")
        left.text(bandwidth / 1e9, left.get_ylim()[1], " this link",
                  va="top", fontsize=8, color="grey")
    always = [r.label for r in rows if r.break_even == math.inf]
    if always:
        left.text(0.03, 0.03, f"{', '.join(always)}: shorter steps than "
                  "dense at every link speed (no break-even)",
                  transform=left.transAxes, fontsize=8)
    left.set(xscale="log", yscale="log", xlabel="link speed per worker "
             "(Gbit/s)", ylabel="seconds per training step",
             title="Step time: below the break-even link, the sparse\n"
             "vote (fewer bytes) beats the dense all-reduce")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    shown = [r for r in rows if r.estimate]
    parts = ("compute", "compression", "communication", "egress")
    bottom = np.zeros(len(shown))
    for part in parts:
        values = np.array([getattr(r.estimate, part) for r in shown])
        right.bar([r.label for r in shown], values, bottom=bottom,
                  label=part)
        bottom += values
    right.set(ylabel="cost of the run ($, all workers)", title=(
        "Cost to reach dense's final loss (from the trial)" if trial else
        f"Cost of {rows[0].steps:,} steps "
        f"({link_text(bandwidth, profile)})"))
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _money(v: float) -> str:
    """Dollars; small amounts with enough digits to be seen."""
    return f"${v:.4f}" if 0 < v < 0.01 else f"${v:,.2f}"


def _legend(r: RoiRow) -> str:
    if r.density is None:
        return "dense all-reduce (every gradient value, every step)"
    return (f"{r.label}: signs of the largest {_pct(r.density)} of the "
            f"gradient, majority vote ({r.option})")


def _pct(d: float) -> str:
    return f"{d * 100:g}%"


def _speed(bps: float, prefix: str = "", inf: str = "any speed",
           zero: str = "none") -> str:
    """A link speed in words (``inf``/``zero`` for the two ends)."""
    if math.isinf(bps):
        return inf
    if bps == 0:
        return zero
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= scale:
            return f"{prefix}{bps / scale:.3g} {unit}"
    return f"{prefix}{bps:.3g} bit/s"


def _break_even(bps: float) -> str:
    return _speed(bps, "below ", "faster at any speed", "never faster")
