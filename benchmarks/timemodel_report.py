"""The validation table of ``timemodel.py``: predicted beside measured per
cell, the error goals, and the model's pick beside the measured fastest.

    python benchmarks/timemodel_report.py timemodel/   # writes table.md
"""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path

#: The options ``auto`` chooses among (the same update).
SAME_UPDATE = ("allgather/int32", "allgather/rice", "sharded/rice")
DEFAULT = "allgather/int32"


def read(folder: Path) -> list[dict]:
    """The rows of ``cells.csv``, numbers as floats."""
    with open(folder / "cells.csv") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in ("predicted_s", "measured_s", "error", "density",
                  "comm_predicted_s", "comm_measured_s", "fwd_bwd_s",
                  "fwd_bwd_predicted_s", "compression_predicted_s",
                  "compression_s", "calibration_s"):
            r[k] = float(r[k])
        r["workers"] = int(r["workers"])
    return rows


def cell_table(rows) -> list[str]:
    """One line per cell."""
    out = ["| M | link | option | density | predicted s | measured s | "
           "error | comm predicted s | comm measured s | note |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        density = "—" if r["option"] == "dense" else f"{r['density']:g}"
        note = f"busy: {r['busy']}" if r["busy"] else ""
        out.append(
            f"| {r['workers']} | {r['link']} | {r['option']} | {density} | "
            f"{r['predicted_s']:.3f} | {r['measured_s']:.3f} | "
            f"{r['error']:+.1%} | {r['comm_predicted_s']:.3f} | "
            f"{r['comm_measured_s']:.3f} | {note} |")
    return out


def choices(rows) -> list[dict]:
    """Per (M, link, density): the model's fastest of :data:`SAME_UPDATE`
    beside the measured fastest, and the default's time."""
    groups = {}
    for r in rows:
        if r["option"] in SAME_UPDATE:
            groups.setdefault((r["workers"], r["link"], r["density"]),
                              {})[r["option"]] = r
    out = []
    for key, cells in sorted(groups.items()):
        if len(cells) < 2:
            continue
        picked = min(cells, key=lambda o: cells[o]["predicted_s"])
        fastest = min(cells, key=lambda o: cells[o]["measured_s"])
        best = cells[fastest]["measured_s"]
        default = cells.get(DEFAULT, {}).get("measured_s", float("nan"))
        out.append({"key": key, "picked": picked, "fastest": fastest,
                    "slower": cells[picked]["measured_s"] / best - 1.0,
                    "vs_default": cells[picked]["measured_s"] / default
                    - 1.0})
    return out


def summary(rows) -> list[str]:
    """The goals of issue 21, met or missed."""
    errors = [abs(r["error"]) for r in rows]
    picks = choices(rows)
    right = sum(p["picked"] == p["fastest"] for p in picks)
    worst_pick = max((p["slower"] for p in picks), default=0.0)
    worst_default = max((p["vs_default"] for p in picks), default=0.0)
    med, top = statistics.median(errors), max(errors)
    lines = [
        f"- cells: {len(rows)}; |error| median **{med:.1%}** (goal <= 15%: "
        f"{'met' if med <= 0.15 else 'missed'}), worst **{top:.1%}** "
        f"(goal <= 25%: {'met' if top <= 0.25 else 'missed'})",
        f"- model's fastest = measured fastest in **{right} of "
        f"{len(picks)}** groups ({right / max(len(picks), 1):.0%}; goal >= "
        f"90%); where not, at most **{worst_pick:.1%}** slower (goal <= "
        f"10%)",
        f"- the model's pick against today's default ({DEFAULT}): at worst "
        f"{worst_default:+.1%} (goal: no more than +3%)",
        f"- calibration (the workers' calibrate call, slowest worker): "
        f"{', '.join(sorted({f'{t:.1f} s' for t in {r['calibration_s'] for r in rows}}))}",
    ]
    return lines


def pick_table(rows) -> list[str]:
    """The model's pick beside the measured fastest."""
    out = ["| M | link | density | model's fastest | measured fastest | "
           "pick slower by | pick vs all-gather int32 |",
           "|---|---|---|---|---|---|---|"]
    for p in choices(rows):
        m, link, d = p["key"]
        out.append(f"| {m} | {link} | {d:g} | {p['picked']} | "
                   f"{p['fastest']} | {p['slower']:.1%} | "
                   f"{p['vs_default']:+.1%} |")
    return out


def write(folder: Path) -> str:
    """Writes ``table.md`` in ``folder``; returns its text."""
    rows = read(Path(folder))
    text = "\n".join(cell_table(rows) + [""] + pick_table(rows) + [""] +
                     summary(rows)) + "\n"
    (Path(folder) / "table.md").write_text(text)
    return text


if __name__ == "__main__":
    print(write(Path(sys.argv[1] if len(sys.argv) > 1 else "timemodel")))
