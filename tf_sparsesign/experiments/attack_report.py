"""The plot and report of ``tf-sparsesign attack`` (from its CSV rows).

Files written to the command's ``out`` folder:

* ``accuracy_vs_hostile.png`` — one panel per attack: final test accuracy
  (mean over seeds, bars = sample std) against the number of hostile
  workers, one line per vote rule (and dense SGD with ``--dense``);
* ``report.md`` — the settings, one table per attack (mean ± std and the
  change against the same rule's clean runs) and the issue's goals checked
  for the recommended vote rule.
"""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np

#: The attack name of runs without hostile workers.
CLEAN = "none"
#: The issue's goals: (attack, hostile workers, largest allowed loss).
GOALS = (("signflip", 2, 2.0), ("signflip", 3, 5.0))
#: Every attack at this many hostile workers may cost at most this much.
ANY_ATTACK = (2, 5.0)

_MATCH = ("data", "split", "labels_per_worker", "workers", "model",
          "hidden", "batch", "steps")


def select(cfg, rows: list[dict]) -> list[dict]:
    """The rows of ``cfg``'s setting (a CSV may hold several)."""
    want = {k: str(getattr(cfg, k)) for k in _MATCH}
    want_s3gd = {"density": str(float(cfg.density)),
                 "lr": str(float(cfg.lr)), "options": cfg.options}
    out = []
    for r in rows:
        if any(r[k] != v for k, v in want.items()):
            continue
        if r["method"] == "s3gd_mv" and (
                any(str(r[k]) != v for k, v in want_s3gd.items()) or
                r["vote"] not in cfg.votes):
            continue
        out.append(r)
    return out


def summarize(rows: list[dict]) -> dict:
    """``(rule, attack, hostile) -> [accuracy %, ...]``, where ``rule`` is
    the vote name, or ``"dense"``; clean runs are filed under every
    attack with ``hostile`` 0."""
    out = defaultdict(list)
    for r in rows:
        rule = "dense" if r["method"] == "dense" else r["vote"]
        out[(rule, r["attack"], int(r["hostile"]))].append(
            100 * float(r["test_accuracy"]))
    return dict(out)


def _stats(accs):
    a = np.array(accs, float)
    return a.mean(), (a.std(ddof=1) if len(a) > 1 else 0.0)


def _rules(cfg):
    return list(cfg.votes) + (["dense"] if cfg.dense else [])


def _cell(summary, rule, attack, f):
    accs = summary.get((rule, CLEAN if f == 0 else attack, f))
    if not accs:
        return "-"
    mean, std = _stats(accs)
    text = f"{mean:.2f} ± {std:.2f}"
    clean = summary.get((rule, CLEAN, 0))
    if f and clean:
        text += f" ({mean - _stats(clean)[0]:+.2f})"
    return text


def tables(cfg, summary) -> list[str]:
    """One markdown table per attack: rules x hostile counts."""
    lines = []
    counts = sorted(set(cfg.hostile))
    for attack in cfg.attacks:
        lines += [f"### {attack}", "",
                  "| vote rule | " + " | ".join(
                      f"{f} of {cfg.workers}" for f in counts) + " |",
                  "|---|" + "---|" * len(counts)]
        for rule in _rules(cfg):
            cells = [_cell(summary, rule, attack, f) for f in counts]
            if not any((rule, attack, f) in summary for f in counts if f):
                continue
            lines.append(f"| {rule} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def goals(cfg, summary) -> list[str]:
    """The issue's goals for ``cfg.recommended`` (lines of text)."""
    rule = cfg.recommended
    clean = summary.get((rule, CLEAN, 0))
    if not clean:
        return [f"- no clean runs of vote={rule!r}: goals not checked"]
    base = _stats(clean)[0]
    out = []
    limits = {(a, f): limit for a, f, limit in GOALS}
    for a in cfg.attacks:   # the strictest goal of each (attack, F)
        key = (a, ANY_ATTACK[0])
        limits[key] = min(limits.get(key, ANY_ATTACK[1]), ANY_ATTACK[1])
    for (attack, f), limit in limits.items():
        accs = summary.get((rule, attack, f))
        if not accs:
            continue
        mean, std = _stats(accs)
        loss = base - mean
        verdict = "met" if loss <= limit else (
            f"missed by {loss - limit:.2f} points")
        out.append(f"- vote={rule}, {attack}, {f} of {cfg.workers}: "
                   f"{mean:.2f} ± {std:.2f} vs clean {base:.2f}: "
                   f"{-loss:+.2f} points (goal: at most {limit:.1f} below)"
                   f": **{verdict}**")
    return out


def plot(cfg, summary, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(cfg.attacks)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows),
                             squeeze=False, sharey=True)
    counts = sorted(set(cfg.hostile))
    for ax, attack in zip(axes.flat, cfg.attacks):
        for rule in _rules(cfg):
            pts = [(f, _stats(summary[(rule, CLEAN if f == 0 else attack,
                                       f)]))
                   for f in counts
                   if (rule, CLEAN if f == 0 else attack, f) in summary]
            if len(pts) < 1 or all(f == 0 for f, _ in pts):
                continue
            ax.errorbar([f for f, _ in pts], [s[0] for _, s in pts],
                        yerr=[s[1] for _, s in pts], marker="o", capsize=3,
                        label=rule)
        ax.set_title(attack)
        ax.set_xlabel(f"hostile workers (of {cfg.workers})")
        ax.set_xticks(counts)
        ax.grid(alpha=0.3)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("final test accuracy %")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(cfg, rows: list[dict]) -> str:
    """Writes the plot and ``report.md`` into ``cfg.out``; returns the
    report's path."""
    rows = select(cfg, rows)
    if not rows:
        raise ValueError(f"no rows of this setting in {cfg.out}/attacks.csv")
    summary = summarize(rows)
    plot(cfg, summary, os.path.join(cfg.out, "accuracy_vs_hostile.png"))
    seeds = sorted({int(r["seed"]) for r in rows})
    lines = [
        "# Attack report", "",
        f"Data `{cfg.data}` ({cfg.split}"
        + (f", {cfg.labels_per_worker} labels per worker" if cfg.split ==
           "noniid" else "") + f"), M = {cfg.workers} workers, model "
        f"`{cfg.model}`" + (f" ({cfg.hidden} hidden)" if cfg.model == "mlp"
                             else "") + f", batch {cfg.batch}, {cfg.steps} "
        f"steps, seeds {seeds}. S3GD-MV at density {cfg.density:g}, lr "
        f"{cfg.lr:g}" + (f", options `{cfg.options}`" if cfg.options else "")
        + (f"; dense SGD lr {cfg.dense_lr:g}" if cfg.dense else "") + ".",
        "", "Final test accuracy %, mean ± sample std over seeds (change "
        "against the same rule with no hostile worker). Hostile workers are"
        " replicas 0..F-1.", ""]
    lines += tables(cfg, summary)
    lines += [f"## Goals (vote={cfg.recommended})", ""] + goals(
        cfg, summary) + ["", "![accuracy vs hostile workers]"
                         "(accuracy_vs_hostile.png)", ""]
    path = os.path.join(cfg.out, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path
