"""Plots and the markdown report of a sweep, from its CSV rows.

Learning rate per (split, method): the grid value with the best final test
accuracy on the first seed (ties: the smaller rate); every other number
here uses that rate's runs over all seeds (mean, sample std, min..max).

Files written to the sweep's ``out`` folder:

* ``accuracy_vs_step.png`` — test accuracy vs step, one line per method
  (mean over seeds, band = min..max), one panel per split;
* ``accuracy_vs_bits.png`` — test accuracy vs cumulative bits sent per
  worker (``bits_sent_per_worker``, log axis);
* ``k_sensitivity.png`` — S3GD-MV's final accuracy and bits per step vs
  density, dense SGD and signSGD-MV as reference lines;
* ``report.md`` — the settings, a table per split, the goal checks.
"""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np

from . import sweep_goals
from .sweep_goals import bits_per_coord, find
from .runs import DEFAULTS, column, score


def _group(row) -> tuple:
    return (row["split"], row["method"], float(row["density"]),
            row["error_feedback"] == "True", column(row, "optimizer"))


def _stats(name: str, values) -> dict:
    """``{name_mean, name_std (sample), name_min, name_max}``."""
    v = np.asarray(values, float)
    return {f"{name}_mean": float(v.mean()),
            f"{name}_std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            f"{name}_min": float(v.min()), f"{name}_max": float(v.max())}


def _curve(name: str, values: dict, xs) -> dict:
    """Mean, min and max over seeds at each step ``xs``: the curves
    ``name``, ``name_lo``, ``name_hi``."""
    return {name: [float(np.mean(values[x])) for x in xs],
            f"{name}_lo": [min(values[x]) for x in xs],
            f"{name}_hi": [max(values[x]) for x in xs]}


def _final(rows):
    return [r for r in rows if int(r["step"]) == int(r["steps_total"])]


def select(cfg, rows: list[dict]) -> list[dict]:
    """The rows of ``cfg``'s setting (a CSV may hold other sweeps too)."""
    want = {"data": cfg.data, "workers": str(cfg.workers),
            "hidden": str(cfg.hidden), "batch": str(cfg.batch),
            "steps_total": str(cfg.steps),
            "labels_per_worker": str(cfg.labels_per_worker),
            "model": cfg.model, "options": cfg.options}
    return [r for r in rows if all((r.get(k) or DEFAULTS.get(k, "")) == v
                                   for k, v in want.items())
            and r["split"] in cfg.splits
            and float(column(r, "weight_decay")) == cfg.weight_decay]


def summarize(rows: list[dict], first_seed: int | None = None) -> list[dict]:
    """One dict per (split, method, density, error_feedback, optimizer) at
    its chosen learning rate (the best final :func:`.runs.score` on the
    first seed: accuracy, or bits per byte for text): label, lr, seeds,
    acc_mean/std/min/max, bits per step (wire and message), and the curves
    ``steps``, ``acc``, ``acc_lo``, ``acc_hi``, ``bits``; text runs add
    ``bpb_mean/std/min/max`` and the curve ``bpb`` (mean over seeds)."""
    finals = _final(rows)
    groups = defaultdict(list)
    for r in finals:
        groups[_group(r)].append(r)
    out = []
    for key, fr in groups.items():
        seeds = sorted({int(r["seed"]) for r in fr})
        s0 = seeds[0] if first_seed is None else first_seed
        cands = [r for r in fr if int(r["seed"]) == s0] or fr
        best = max(cands, key=lambda r: (score(r), -float(r["lr"])))
        lr = best["lr"]
        chosen = [r for r in fr if r["lr"] == lr]
        steps = int(best["steps_total"])
        curve, bpb, bits = defaultdict(list), defaultdict(list), {}
        for r in rows:
            if _group(r) == key and r["lr"] == lr:
                curve[int(r["step"])].append(float(r["test_accuracy"]))
                if column(r, "test_bits_per_byte"):
                    bpb[int(r["step"])].append(float(r["test_bits_per_byte"]))
                bits[int(r["step"])] = float(r["bits_sent_per_worker"])
        xs = sorted(curve)
        text = {} if not bpb else {
            **_stats("bpb", [r["test_bits_per_byte"] for r in chosen]),
            **_curve("bpb", bpb, xs)}
        out.append({
            "split": key[0], "method": key[1], "density": key[2],
            "error_feedback": key[3], "optimizer": key[4],
            "label": best["label"],
            "lr": float(lr), "lrs_tried": sorted({float(r["lr"]) for r in
                                                  fr}),
            "seeds": sorted(int(r["seed"]) for r in chosen),
            **_stats("acc", [r["test_accuracy"] for r in chosen]), **text,
            "wire_bits_per_step": float(best["bits_sent_per_worker"]) / steps,
            "message_bits_per_step":
                float(best["message_bits_per_worker"]) / steps,
            "params": int(best["params"]), "workers": int(best["workers"]),
            "steps": xs, **_curve("acc", curve, xs),
            "bits": [bits[x] for x in xs],
        })
    order = {"dense": 0, "signsgd_mv": 1, "s3gd_mv": 2, "topk_values": 3,
             "random_k": 4}
    out.sort(key=lambda s: (s["split"], order.get(s["method"], 9),
                            not s["error_feedback"], s["density"],
                            s["optimizer"]))
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curve_plots(summary, splits, out, key="acc", ylabel="test accuracy",
                stem="accuracy") -> dict:
    """``<stem>_vs_step.png`` and ``<stem>_vs_bits.png``: the summary's
    curve ``key`` (mean over seeds, band = min..max) against the step and
    the cumulative bits sent per worker; returns ``{"step": file, "bits":
    file}``."""
    plt = _pyplot()
    files = {}
    for kind in ("step", "bits"):
        fig, axes = plt.subplots(1, len(splits), figsize=(6.5 * len(splits),
                                                          4.5), squeeze=False)
        for ax, split in zip(axes[0], splits):
            for s in (s for s in summary if s["split"] == split):
                x = np.array(s["steps"] if kind == "step" else s["bits"],
                             float)
                keep = x > 0 if kind == "bits" else np.ones_like(x, bool)
                style = "--" if not s["error_feedback"] and s[
                    "method"] == "s3gd_mv" else "-"
                line, = ax.plot(x[keep], np.array(s[key])[keep], style,
                                label=f"{s['label']} (lr {s['lr']:g})")
                ax.fill_between(x[keep], np.array(s[f"{key}_lo"])[keep],
                                np.array(s[f"{key}_hi"])[keep],
                                color=line.get_color(), alpha=0.15)
            if kind == "bits":
                ax.set_xscale("log")
                ax.set_xlabel("cumulative bits sent per worker")
            else:
                ax.set_xlabel("step")
            ax.set_ylabel(ylabel)
            ax.set_title(split)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
        name = f"{stem}_vs_{kind}.png"
        fig.savefig(os.path.join(out, name), dpi=110)
        plt.close(fig)
        files[kind] = name
    return files


def _plots(summary, splits, out):
    files = curve_plots(summary, splits, out)
    plt = _pyplot()
    fig, axes = plt.subplots(2, len(splits), figsize=(6 * len(splits), 7),
                             squeeze=False, sharex=True)
    for col, split in enumerate(splits):
        acc_ax, bit_ax = axes[0][col], axes[1][col]
        for ef, style in ((True, "o-"), (False, "s--")):
            pts = sorted((s["density"], s) for s in summary
                         if s["split"] == split and s["method"] == "s3gd_mv"
                         and s["error_feedback"] == ef)
            if not pts:
                continue
            d = [p[0] for p in pts]
            acc_ax.errorbar(d, [p[1]["acc_mean"] for p in pts],
                            yerr=[p[1]["acc_std"] for p in pts], fmt=style,
                            capsize=3,
                            label="S3GD-MV " + ("EF" if ef else "no EF"))
            bit_ax.plot(d, [p[1]["wire_bits_per_step"] for p in pts], style,
                        label="S3GD-MV " + ("EF" if ef else "no EF"))
        for method, color in (("dense", "k"), ("signsgd_mv", "tab:red")):
            ref = find(summary, split, method)
            if ref is None:
                continue
            acc_ax.axhline(ref["acc_mean"], color=color, ls=":",
                           label=ref["label"])
            bit_ax.axhline(ref["wire_bits_per_step"], color=color, ls=":",
                           label=ref["label"] + (
                               f" ({bits_per_coord(ref):.2g} bits/coord)"
                               if method != "dense" else ""))
            if method == "signsgd_mv":
                bit_ax.axhline((ref["workers"] - 1) * ref["params"],
                               color=color, ls="-.", alpha=0.6,
                               label="signSGD-MV at 1 bit/coord")
        acc_ax.set_xscale("log")
        acc_ax.set_ylabel("final test accuracy")
        acc_ax.set_title(split)
        acc_ax.grid(alpha=0.3)
        acc_ax.legend(fontsize=7)
        bit_ax.set_yscale("log")
        bit_ax.set_xlabel("density K/N")
        bit_ax.set_ylabel("bits per worker per step (wire)")
        bit_ax.grid(alpha=0.3)
        bit_ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "k_sensitivity.png"), dpi=110)
    plt.close(fig)
    files["k"] = "k_sensitivity.png"
    return files


def _table(summary, split):
    dense = find(summary, split, "dense")
    sign = find(summary, split, "signsgd_mv")
    lines = ["| method | lr (grid) | final test acc, mean ± std (min..max)"
             " | seeds | wire bits/worker/step | uplink bits/step | × fewer "
             "than dense (wire) | vs signSGD-MV here | vs signSGD-MV 1-bit"
             " | Δacc vs dense |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for s in (s for s in summary if s["split"] == split):
        w = s["wire_bits_per_step"]
        one_bit = (s["workers"] - 1) * s["params"]
        cells = [
            s["label"],
            f"{s['lr']:g} ({', '.join(f'{v:g}' for v in s['lrs_tried'])})",
            f"{100 * s['acc_mean']:.2f} ± {100 * s['acc_std']:.2f} "
            f"({100 * s['acc_min']:.2f}..{100 * s['acc_max']:.2f})",
            str(len(s["seeds"])), f"{w:,.0f}",
            f"{s['message_bits_per_step']:,.0f}",
            f"{dense['wire_bits_per_step'] / w:.1f}" if dense else "-",
            f"{w / sign['wire_bits_per_step']:.3f}×" if sign else "-",
            f"{w / one_bit:.3f}×",
            f"{100 * (s['acc_mean'] - dense['acc_mean']):+.2f}" if dense
            else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _model_text(cfg) -> str:
    text = (f"MLP with {cfg.hidden} hidden units" if cfg.model == "mlp"
            else f"model `{cfg.model}`")
    return text + (f", options `{cfg.options}`" if cfg.options else "")


def write_report(cfg, rows: list[dict]) -> str:
    """Writes the PNGs and ``report.md`` into ``cfg.out``; returns the
    report's path (a text sweep has its own, :mod:`.lm_report`)."""
    rows = select(cfg, rows)
    if not rows:
        raise ValueError(f"no CSV rows match the sweep's settings in "
                         f"{cfg.out} (data={cfg.data}, workers="
                         f"{cfg.workers}, steps={cfg.steps}, ...)")
    splits = [s for s in cfg.splits if any(r["split"] == s for r in rows)]
    summary = summarize(rows, first_seed=cfg.seeds[0])
    files = _plots(summary, splits, cfg.out)
    p = summary[0]
    lines = [
        "# Sweep report", "",
        f"Data `{cfg.data}`, M = {cfg.workers} workers (logical CPU "
        f"devices, SparseSignStrategy), {_model_text(cfg)} "
        f"(N = {p['params']:,} parameters), batch {cfg.batch} per worker, "
        f"{cfg.steps} steps, seeds {list(cfg.seeds)}; non-IID: "
        f"{cfg.labels_per_worker} labels per worker.", "",
        "Learning rate: the grid value with the best final test accuracy on"
        f" seed {cfg.seeds[0]}; all seeds then run at that rate. Wire bits ="
        " what crosses one worker's link per step (dense: ring all-reduce "
        "2(M-1)/M·32N; voting: ring all-gather, (M-1) × the message: int32"
        " codes for S3GD-MV and the baselines, packed signs for signSGD-MV),"
        " from the library's accounting. Uplink = one worker's own message."
        " signSGD-MV here sends one ternary digit per coordinate (1.6 bits:"
        " zeros abstain); the 1-bit column compares with the literature's "
        "1-bit signSGD-MV, (M-1)·N bits.", ""]
    for split in splits:
        lines += [f"## {split}", ""] + _table(summary, split) + [""]
    lines += ["## Goals", ""] + sweep_goals.goals(summary) + [""]
    lines += ["## Plots", "",
              f"![accuracy vs step]({files['step']})", "",
              f"![accuracy vs bits]({files['bits']})", "",
              f"![K sensitivity]({files['k']})", ""]
    return save(cfg.out, lines)


def save(out: str, lines: list[str]) -> str:
    """Writes ``lines`` to ``<out>/report.md``; returns its path."""
    path = os.path.join(out, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path
