"""A table comparing the ``options`` of a sweep folder's runs
(``tf-sparsesign report --all-options``): one row per (split, method,
density, options), each at its own best learning rate on the first seed
(:func:`.reporting.summarize`), with the change against the same method
without options and against dense SGD. Written to ``options.md``.
"""

from __future__ import annotations

import os

from .reporting import summarize
from .runs import DEFAULTS


def rows_by_options(rows: list[dict]) -> dict:
    """``options text -> rows`` (older rows without the column: ``""``)."""
    out = {}
    for r in rows:
        out.setdefault(r.get("options") or DEFAULTS["options"], []).append(r)
    return out


def table(cfg, rows: list[dict]) -> list[str]:
    """Markdown lines: per split, every method/density/options group."""
    base_filter = {"data": cfg.data, "workers": str(cfg.workers),
                   "hidden": str(cfg.hidden), "batch": str(cfg.batch),
                   "steps_total": str(cfg.steps),
                   "labels_per_worker": str(cfg.labels_per_worker),
                   "model": cfg.model}
    rows = [r for r in rows if all((r.get(k) or DEFAULTS.get(k, "")) == v
                                   for k, v in base_filter.items())]
    groups = []
    for options, part in sorted(rows_by_options(rows).items()):
        for s in summarize(part, first_seed=cfg.seeds[0]):
            groups.append((options, s))
    out = []
    for split in cfg.splits:
        mine = [(o, s) for o, s in groups if s["split"] == split]
        if not mine:
            continue
        dense = next((s for o, s in mine if s["method"] == "dense"), None)
        out += [f"### {split}", "",
                "| method | options | lr (grid) | final test acc, mean ± std "
                "(min..max) | seeds | wire bits/worker/step | Δ vs no options"
                " | Δ vs dense |", "|---|---|---|---|---|---|---|---|"]
        for options, s in sorted(mine, key=lambda p: (
                p[1]["method"], p[1]["density"], p[0])):
            plain = next((b for o, b in mine if o == "" and
                          b["method"] == s["method"] and
                          b["density"] == s["density"] and
                          b["error_feedback"] == s["error_feedback"]), None)
            out.append("| " + " | ".join([
                s["label"], f"`{options}`" if options else "-",
                f"{s['lr']:g} ({', '.join(f'{v:g}' for v in s['lrs_tried'])})",
                f"{100 * s['acc_mean']:.2f} ± {100 * s['acc_std']:.2f} "
                f"({100 * s['acc_min']:.2f}..{100 * s['acc_max']:.2f})",
                str(len(s["seeds"])), f"{s['wire_bits_per_step']:,.0f}",
                _delta(s, plain) if options else "-", _delta(s, dense)])
                + " |")
        out.append("")
    return out


def _delta(s, ref) -> str:
    if ref is None or ref is s:
        return "-"
    return f"{100 * (s['acc_mean'] - ref['acc_mean']):+.2f}"


def write(cfg, rows: list[dict]) -> str:
    """Writes ``options.md`` into ``cfg.out``; returns its path."""
    lines = ["# Options compared", "",
             f"Data `{cfg.data}`, M = {cfg.workers}, model `{cfg.model}`, "
             f"batch {cfg.batch}, {cfg.steps} steps. Each row at its best "
             f"learning rate on seed {cfg.seeds[0]}; mean ± sample std over"
             " the seeds run at that rate.", ""] + table(cfg, rows)
    path = os.path.join(cfg.out, "options.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path
