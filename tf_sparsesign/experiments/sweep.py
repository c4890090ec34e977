"""``tf-sparsesign sweep``: train one model with several methods, log it
all (one CSV row per evaluation point, :data:`.runs.COLUMNS`), then write
the plots and report (:mod:`.reporting`). Resumable: finished settings are
skipped.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from typing import Callable, Iterable

from . import datasets
from .methods import Method, expand_methods
from .runs import (COLUMNS, DEFAULTS, Setting, ensure_devices, row_key,
                   score, train)


def read_rows(path: str) -> list[dict]:
    """The CSV's rows (empty when the file does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def append_rows(path: str, rows: Iterable[dict]) -> None:
    """Appends rows (writing the header for a new file; a row without one
    of the newer columns gets its :data:`.runs.DEFAULTS` value). A CSV
    written before the newer columns existed is first rewritten with them
    (filled with the defaults), so old and new rows share one header."""
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    if not new:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        if tuple(header) != COLUMNS:
            _upgrade(path, header)
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            w.writeheader()
        for row in rows:
            w.writerow({**DEFAULTS, **{k: row[k] for k in COLUMNS
                                       if k in row or k not in DEFAULTS}})


def _upgrade(path: str, header: list) -> None:
    unknown = set(header) - set(COLUMNS)
    if unknown or set(COLUMNS) - set(header) - set(DEFAULTS):
        raise ValueError(f"{path} has columns {header}; expected "
                         f"{list(COLUMNS)}: write to a new --out folder")
    old = read_rows(path)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for row in old:
            w.writerow({**DEFAULTS, **row})


def final_score(rows: list[dict], key: tuple) -> float | None:
    """:func:`.runs.score` (higher is better: test accuracy, or minus the
    held-out bits per byte) at the last step of the run with ``key``."""
    done = [r for r in rows if row_key(r) == key and
            int(r["step"]) == int(r["steps_total"])]
    return score(done[-1]) if done else None


@dataclasses.dataclass
class SweepConfig:
    """The sweep's settings (the CLI flags)."""

    data: str = "digits"
    splits: tuple = ("iid",)
    labels_per_worker: int = 2
    workers: int = 4
    hidden: int = 32
    batch: int = 32
    steps: int = 200
    eval_every: int = 50
    methods: tuple = ("dense", "signsgd", "s3gd")
    densities: tuple = (0.01,)
    baseline_density: float = 0.01
    lrs: dict = dataclasses.field(default_factory=dict)
    seeds: tuple = (0,)
    out: str = "sweep-out"
    model: str = "mlp"
    options: str = ""
    optimizer: str = "sgd"
    weight_decay: float = 0.0

    def lr_grid(self, method: Method) -> tuple:
        """``--lr FAMILY@OPTIMIZER=``, else ``--lr FAMILY=``, else the
        default grid of the method and its optimizer."""
        own = f"{method.family}@{method.optimizer}"
        return tuple(self.lrs.get(own, self.lrs.get(method.family,
                                                    method.lr_grid())))


def run_sweep(cfg: SweepConfig, progress: bool = True,
              log: Callable[[str], None] = print, report: bool = True) -> str:
    """Runs every missing setting of ``cfg``, then writes the report.

    Learning rate: for each (split, method) every rate of the grid runs on
    the first seed; the one with the best final score (test accuracy, or
    held-out bits per byte for text; ties: the smaller rate) runs on the
    other seeds. Settings whose final row is
    already in ``<out>/results.csv`` are skipped, so an interrupted sweep
    resumes where it stopped. Returns the CSV path.
    """
    os.makedirs(cfg.out, exist_ok=True)
    path = os.path.join(cfg.out, "results.csv")
    devices = ensure_devices(cfg.workers)
    data = datasets.load(cfg.data)
    methods = expand_methods(cfg.methods, cfg.densities,
                             cfg.baseline_density, cfg.optimizer)
    rows = read_rows(path)
    done = {row_key(r) for r in rows if int(r["step"]) == int(
        r["steps_total"])}

    def setting(split, method, lr, seed):
        return Setting(cfg.data, split, cfg.labels_per_worker, cfg.workers,
                       cfg.hidden, cfg.batch, cfg.steps, method, float(lr),
                       int(seed), cfg.model, cfg.options, cfg.weight_decay)

    plan = [(split, m) for split in cfg.splits for m in methods]
    total = sum(len(cfg.lr_grid(m)) + len(cfg.seeds) - 1 for _, m in plan)
    bar = _bar(total * cfg.steps, progress)
    first, others = cfg.seeds[0], cfg.seeds[1:]
    try:
        for split, method in plan:
            grid = cfg.lr_grid(method)
            for lr in grid:
                rows += _run_once(data, setting(split, method, lr, first),
                                  devices, cfg, done, path, bar, log)
            scores = [(final_score(rows, setting(split, method, lr,
                                                 first).key()), -lr, lr)
                      for lr in grid]
            best = max(scores)[2]
            for seed in others:
                rows += _run_once(data, setting(split, method, best, seed),
                                  devices, cfg, done, path, bar, log)
    finally:
        bar.close()
    if report:
        write_report(cfg, read_rows(path))
    return path


def write_report(cfg: SweepConfig, rows: list[dict]) -> str:
    """The sweep's plots and ``report.md`` (:mod:`.reporting`, or
    :mod:`.lm_report` for ``--model gpt``); returns the report's path."""
    from . import lm_report, reporting  # matplotlib only now

    if cfg.model == "gpt":
        return lm_report.write_report(cfg, reporting.select(cfg, rows))
    return reporting.write_report(cfg, rows)


def _run_once(data, s: Setting, devices, cfg, done, path, bar, log):
    if s.key() in done:
        bar.update(s.steps)
        return []
    bar.set_description(f"{s.split} {s.method.label} lr={s.lr:g} "
                        f"seed={s.seed}")
    rows, _ = train(data, s, devices, cfg.eval_every, bar.update)
    append_rows(path, rows)
    done.add(s.key())
    last = rows[-1]
    metric = (f"bpb={last['test_bits_per_byte']:.4f}"
              if last["test_bits_per_byte"] != "" else
              f"acc={last['test_accuracy']:.4f}")
    log(f"{s.split:6s} {s.method.label:22s} lr={s.lr:<7g} seed={s.seed} "
        f"{metric} "
        f"bits/worker={last['bits_sent_per_worker']:.3e} "
        f"({last['wall_s']:.1f} s)")
    return [{k: str(v) for k, v in r.items()} for r in rows]


class _NoBar:
    def update(self, n=1):
        pass

    def set_description(self, text):
        pass

    def close(self):
        pass


def _bar(total, progress):
    if not progress:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="step", dynamic_ncols=True)
