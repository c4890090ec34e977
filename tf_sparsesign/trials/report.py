"""A trial's numbers, in the words a decision-maker reads: how many steps
each candidate needs to reach the dense run's final loss, how long that
takes (the step time measured here, or predicted at another link) and what
it costs; a CSV of every step, a PNG of the curves, and a verdict.

The target is the dense run's final training loss, smoothed over its last
steps (:func:`smoothed`, the same window for every candidate); a candidate
reaches it at the first step its smoothed loss is at or below it. One that
diverged, or never reached it within the trial, is said so (never called
faster).
"""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import numpy as np


def window(steps: int) -> int:
    """The smoothing window: a twentieth of the run, at least 5 steps."""
    return max(5, steps // 20)


def smoothed(losses, width: int) -> np.ndarray:
    """Trailing mean of ``losses`` over ``width`` steps (shorter at the
    start)."""
    x = np.asarray(losses, np.float64)
    c = np.concatenate([[0.0], np.cumsum(x)])
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(0, idx - width)
    return (c[idx] - c[lo]) / (idx - lo)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One candidate against the target: ``steps_to_target`` (None: not
    reached), ``step_seconds`` (measured, or predicted at the asked link),
    ``seconds_to_target``, the cost of getting there and per 10k steps."""

    name: str
    lr: float
    steps_to_target: int | None
    step_seconds: float
    seconds_to_target: float | None
    bytes_per_step: float
    cost_to_target: float | None
    cost_per_10k_steps: float | None
    diverged: bool
    final_loss: float


def outcomes(runs, step_seconds: dict, workers: int,
             price_per_worker_hour: float | None = None,
             egress_price_per_gb: float | None = None) -> tuple:
    """``(target, [Outcome])`` of ``runs`` (the dense run first):
    ``step_seconds`` maps a run's name to its step time at the link the
    report is for."""
    dense = runs[0]
    width = window(len(dense.losses))
    target = float(smoothed(dense.losses, width)[-1])
    out = []
    for run in runs:
        curve = smoothed(run.losses, width)
        hit = np.nonzero(curve <= target)[0]
        reached = (None if run.diverged or not len(hit) else
                   int(hit[0]) + 1)
        seconds = step_seconds[run.name]
        cost = _cost(seconds, run.bytes_per_step, workers,
                     price_per_worker_hour, egress_price_per_gb)
        out.append(Outcome(
            run.name, run.lr, reached, seconds,
            None if reached is None else reached * seconds,
            run.bytes_per_step,
            None if reached is None or cost is None else reached * cost,
            None if cost is None else 10_000 * cost, run.diverged,
            float(curve[-1])))
    return target, out


def _cost(seconds, nbytes, workers, price_hour, price_gb):
    """Cost of one step: every worker's time plus what it sends."""
    if price_hour is None and price_gb is None:
        return None
    compute = (price_hour or 0.0) * workers * seconds / 3600.0
    egress = (price_gb or 0.0) * workers * nbytes / 1e9
    return compute + egress


def verdict(target: float, results, link: str, steps: int) -> list:
    """Plain sentences, one per sign candidate, then the recommendation."""
    dense = results[0]
    if dense.steps_to_target is None:
        return [f"The dense run diverged (lr {dense.lr:g}): the trial has no "
                "reference; fix the dense run first."]
    lines = [f"Target: dense's final loss {target:.4g} (reached by dense in "
             f"{dense.steps_to_target} steps, {dense.step_seconds:.3g} s per "
             f"step {link})."]
    for r in results[1:]:
        if r.diverged:
            lines.append(f"{r.name} (lr {r.lr:g}) diverged: not an option "
                         "at this rate.")
            continue
        if r.steps_to_target is None:
            lines.append(f"{r.name} (lr {r.lr:g}) did not reach it in "
                         f"{steps} steps (its final loss {r.final_loss:.4g}):"
                         " not faster.")
            continue
        more = r.steps_to_target / dense.steps_to_target - 1
        shorter = dense.step_seconds / r.step_seconds
        sooner = dense.seconds_to_target / r.seconds_to_target
        text = (f"{r.name} (lr {r.lr:g}) reached it in {r.steps_to_target} "
                f"steps instead of {dense.steps_to_target} "
                f"({abs(more):.0%} {'more' if more >= 0 else 'fewer'} "
                f"steps) with {_times(shorter, 'shorter', 'longer')} steps "
                f"{link}: {_times(sooner, 'sooner', 'later')}")
        if r.cost_per_10k_steps is not None:
            saved = dense.cost_per_10k_steps - r.cost_per_10k_steps
            text += (f", ${abs(saved):,.2f} {'less' if saved >= 0 else 'more'}"
                     " per 10k steps")
        lines.append(text + ".")
    best = min((r for r in results if r.seconds_to_target is not None),
               key=lambda r: r.seconds_to_target)
    lines.append(f"Recommendation: {best.name}" + (
        " (stay dense: no sign candidate reaches its loss sooner)."
        if best is dense else
        f", {dense.seconds_to_target / best.seconds_to_target:.2g}x sooner "
        "than dense to the same loss."))
    return lines


def _times(ratio: float, more: str, less: str) -> str:
    """``"3.9x shorter"`` for a ratio above 1, ``"1.5x longer"`` below."""
    return f"{ratio:.2g}x {more}" if ratio >= 1 else f"{1 / ratio:.2g}x {less}"


def write_csv(path: Path, runs) -> None:
    """One row per candidate and step: loss, smoothed loss, seconds, the
    validation loss where measured, and the density (empty for dense;
    ``tf-sparsesign plan --trial`` reads it)."""
    width = window(len(runs[0].losses))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["candidate", "lr", "step", "loss", "smoothed_loss",
                    "seconds", "bytes_per_step", "val_loss", "density"])
        for run in runs:
            val = dict(run.validation)
            density = ("" if run.settings.get("dense") else
                       run.settings.get("density", ""))
            for i, (loss, s, sm) in enumerate(zip(
                    run.losses, run.seconds,
                    smoothed(run.losses, width)), start=1):
                w.writerow([run.name, run.lr, i, loss, sm, s,
                            run.bytes_per_step, val.get(i, ""), density])


def plot(path: Path, runs, results, target: float, link: str) -> None:
    """Loss against steps and against projected time, target marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = window(len(runs[0].losses))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for run, res in zip(runs, results):
        curve = smoothed(run.losses, width)
        steps = np.arange(1, len(curve) + 1)
        label = f"{run.name} (lr {run.lr:g})"
        axes[0].plot(steps, curve, label=label)
        axes[1].plot(steps * res.step_seconds / 60.0, curve, label=label)
    for ax, xlabel in zip(axes, ("training step",
                                 f"projected minutes {link}")):
        ax.axhline(target, color="gray", ls="--", lw=1,
                   label="dense's final loss")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("training loss (smoothed)")
        ax.grid(alpha=0.3)
    axes[0].set_title("Loss per step: does it still learn?")
    axes[1].set_title("Loss against time: is it sooner?")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt_seconds(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "-"
    return f"{s:.3g} s" if s < 120 else f"{s / 60:.3g} min"
