"""The report of a language-model sweep (``--model gpt``): held-out bits
per byte per method, bytes per step, and the curves.

Learning rate per (split, method, optimizer): the grid value with the
lowest final held-out bits per byte on the first seed
(:func:`.reporting.summarize`); the numbers are that rate's runs over all
seeds (mean, sample std, min..max). "Δ vs best dense" is relative:
``bpb / bpb(best dense) - 1`` against the dense run (any optimizer) with
the lowest mean. Files: ``bits_per_byte_vs_step.png``,
``bits_per_byte_vs_bits.png`` and ``report.md`` in the sweep's ``out``.
"""

from __future__ import annotations

from . import text
from .reporting import curve_plots, save, summarize


def table(summary, split) -> list[str]:
    """Markdown lines of one split's table."""
    mine = [s for s in summary if s["split"] == split]
    dense = [s for s in mine if s["method"] == "dense"]
    best = min(dense, key=lambda s: s["bpb_mean"]) if dense else None
    lines = ["| method | lr (grid) | held-out bits/byte, mean ± std "
             "(min..max) | seeds | Δ vs best dense | wire bytes/worker/step"
             " | × fewer than dense |", "|---|---|---|---|---|---|---|"]
    for s in mine:
        wire = s["wire_bits_per_step"] / 8
        cells = [
            s["label"],
            f"{s['lr']:g} ({', '.join(f'{v:g}' for v in s['lrs_tried'])})",
            f"{s['bpb_mean']:.3f} ± {s['bpb_std']:.3f} ({s['bpb_min']:.3f}"
            f"..{s['bpb_max']:.3f})", str(len(s["seeds"])),
            f"{100 * (s['bpb_mean'] / best['bpb_mean'] - 1):+.1f}%"
            if best else "-", f"{wire:,.0f}",
            f"{best['wire_bits_per_step'] / s['wire_bits_per_step']:.1f}"
            if best else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_report(cfg, rows: list[dict]) -> str:
    """Writes the PNGs and ``report.md`` of a text sweep into ``cfg.out``
    (``rows``: the sweep's own rows, :func:`.reporting.select`); returns
    the report's path."""
    if not rows:
        raise ValueError(f"no CSV rows match the sweep's settings in "
                         f"{cfg.out} (data={cfg.data}, workers="
                         f"{cfg.workers}, steps={cfg.steps}, ...)")
    data = text.load_text(cfg.data)
    splits = [s for s in cfg.splits if any(r["split"] == s for r in rows)]
    summary = summarize(rows, first_seed=cfg.seeds[0])
    files = curve_plots(summary, splits, cfg.out, key="bpb",
                        ylabel="held-out bits per byte",
                        stem="bits_per_byte")
    lines = [
        "# Language-model sweep report", "",
        f"Corpus `{cfg.data}` (SHA-256 {data.digest}…): "
        f"{len(data.train):,} training bytes, the last {len(data.heldout):,}"
        f" held out ({len(data.x_test)} windows of {data.context}); "
        f"byte-level GPT (`gpt`, N = {summary[0]['params']:,}); M = "
        f"{cfg.workers} workers (SparseSignStrategy over logical CPU "
        f"devices), batch {cfg.batch} windows per worker, {cfg.steps} steps,"
        f" weight decay {cfg.weight_decay:g}, seeds {list(cfg.seeds)}"
        + (f", options `{cfg.options}`" if cfg.options else "") + ".", "",
        f"Learning rate: the grid value with the lowest final held-out bits"
        f" per byte on seed {cfg.seeds[0]}. Wire bytes = what crosses one "
        "worker's link per step, from the library's accounting (dense: ring"
        " all-reduce 2(M-1)/M·4N; voting: ring all-gather of the messages).",
        ""]
    for split in splits:
        lines += [f"## {split}", ""] + table(summary, split) + [""]
    lines += ["## Plots", "",
              f"![bits per byte vs step]({files['step']})", "",
              f"![bits per byte vs bits]({files['bits']})", ""]
    return save(cfg.out, lines)
