"""Validation of the time model (issue 21): calibrate, then run and predict
every cell of a grid of (workers, link, option, density) on real workers.

    sudo .venv/bin/python benchmarks/timemodel.py --workers 2 4 \\
        --links loopback 1gbit 100mbit --out timemodel/
    .venv/bin/python benchmarks/timemodel.py --workers 4 --links loopback \\
        --calibrate-only --out cal/      # the calibration's own time

Per (M, link), on the test hosts of ``netbed.py``:

1. **Calibration**, a job of its own: M workers of ``network_worker.py
   calibrate`` (the same strategy, MLP, batch, threads and sharing of
   this machine's cores as the runs) call :func:`tf_sparsesign.calibrate`;
   the profile is saved as ``profile_m<M>_<link>.json``. The model is never
   fitted to the runs below.
2. **Runs**: for each option and density a fresh cluster of ``network.py``
   (:func:`network.run_method`): 3 warm-up + ``--steps`` measured steps,
   the median over workers of each worker's median step time.
3. **Prediction**: :func:`tf_sparsesign.policy.predict` from the profile at
   the run's sizes (forward+backward from the profile).

Before each timing job ``--quiet-cmd`` waits for a quiet machine; a
:class:`loadwatch.LoadWatch` records other processes' CPU use during the
job, and a job that saw any is run once more (both kept, labelled). Rows
are appended to ``cells.csv`` as they finish (``--resume`` skips cells
already there); ``table.md`` is written at the end.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadwatch  # noqa: E402
import netbed  # noqa: E402
import network  # noqa: E402
from tf_sparsesign import policy  # noqa: E402

FIELDS = ["workers", "link", "option", "density", "predicted_s",
          "measured_s", "error", "fwd_bwd_predicted_s", "fwd_bwd_s",
          "compression_predicted_s", "compression_s", "comm_predicted_s",
          "comm_measured_s", "busy", "attempt", "calibration_s"]
#: The 784 -> hidden -> 10 MLP's tensors.
INPUTS, CLASSES = 784, 10


def mlp_sizes(hidden) -> list[int]:
    """Element counts of the MLP's trainable tensors."""
    dims = [INPUTS, *hidden, CLASSES]
    out = []
    for a, b in zip(dims, dims[1:]):
        out += [a * b, b]
    return out


def method_of(option: str, density: float) -> dict:
    """``network.py``'s method dict of an option name."""
    o = policy.Option.parse(option)
    if o.exchange == "dense":
        return {"name": "dense", "wire": "fp32", "density": 1.0,
                "aggregation": "allreduce", "label": "dense"}
    agg = o.exchange + ("-topk" if o.downlink == "topk" else "")
    return {"name": "ours", "wire": o.wire, "density": density,
            "aggregation": agg, "label": f"{option} {density:g}"}


def watched(args, what: str, job):
    """``(result, busy, attempt)`` of ``job()`` after waiting for a quiet
    machine. A job that saw another process busy while it ran is run once
    more when the machine had been quiet before it (a newcomer); when the
    machine never got quiet, the load is the machine's state: the job runs
    once and is labelled."""
    for attempt in (1, 2):
        was_quiet = loadwatch.quiet(args.quiet_cmd)
        with loadwatch.LoadWatch() as watch:
            result = job()
        busy = sorted(set(watch.busy))
        if not was_quiet:
            busy = ["machine never quiet"] + busy
        if not busy:
            return result, [], attempt
        again = attempt == 1 and was_quiet
        print(f"  {what}: other processes busy ({', '.join(busy[:4])})"
              + ("; running it again" if again else ""), flush=True)
        if not again:
            return result, busy, attempt
    return result, busy, 2


def calibrate(bed, args, out: Path, deadline) -> tuple:
    """The profile of this (M, link), from a calibration job."""
    path = out / f"profile_m{bed.workers}_{bed.bandwidth}.json"
    run_dir = Path(tempfile.mkdtemp(prefix="tfss-cal-")) / "c"
    flags = ["--density", str(args.densities[0]), "--hidden", args.hidden,
             "--batch", str(args.batch), "--threads", str(args.threads),
             "--profile", str(path), "--options", ",".join(args.options)]
    results = network.run_cluster(
        network.worker_cluster(bed, "calibrate", flags, run_dir, deadline),
        run_dir, deadline)
    took = max(r["calibrate_s"] for r in results)
    return policy.load_profile(path), took


def cell(bed, args, option, density, profile, out: Path) -> dict:
    """Runs one cell; returns its CSV row (prediction beside measurement)."""
    hidden = [int(h) for h in args.hidden.split(",")]
    sizes = mlp_sizes(hidden)
    m = bed.workers
    k = sum(policy.allocate(sizes, density, None, m))
    run_dir = Path(tempfile.mkdtemp(prefix="tfss-cell-")) / "r"
    run_args = argparse.Namespace(**{**vars(args), "workers": m})
    rows = network.run_method(bed, method_of(option, density), run_args,
                              run_dir, network.Deadline(args.timeout))
    name = f"m{m}_{bed.bandwidth}_{option.replace('/', '-')}_{density:g}"
    network.write_csv(out / "runs" / f"{name}.csv", rows)
    summary = network.summarize(rows)[0]
    pred = policy.predict(policy.Workload(sum(sizes), k, m), [option],
                          profile)[0]
    measured = summary["step_median_s"]
    return {"workers": m, "link": bed.bandwidth, "option": option,
            "density": density, "predicted_s": pred.seconds,
            "measured_s": measured,
            "error": pred.seconds / measured - 1.0,
            "fwd_bwd_predicted_s": pred.parts["forward_backward"],
            "fwd_bwd_s": summary["fwd_bwd_s"],
            "compression_predicted_s": pred.seconds - pred.comm -
            pred.parts["forward_backward"],
            "compression_s": sum(summary[f] for f in ("encode_s", "vote_s",
                                                       "apply_s")),
            "comm_predicted_s": pred.comm,
            "comm_measured_s": summary["comm_s"]}


def done_cells(path: Path) -> set:
    """Cells already in ``cells.csv`` (for ``--resume``)."""
    if not path.exists():
        return set()
    with open(path) as f:
        return {(int(r["workers"]), r["link"], r["option"],
                 float(r["density"])) for r in csv.DictReader(f)
                if r["attempt"] != "superseded"}


def append(path: Path, row: dict) -> None:
    """One row more in ``cells.csv``."""
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def run_grid(args) -> None:
    """Every (M, link): calibrate, then every cell not done yet."""
    args.out.mkdir(parents=True, exist_ok=True)
    table = args.out / "cells.csv"
    done = done_cells(table) if args.resume else set()
    for m in args.workers:
        for link in args.links:
            bed = netbed.testbed(m, link)
            network.ACTIVE_BEDS.append(bed)
            with bed:
                print(f"M = {m}, {bed.describe()}", flush=True)
                run_one_bed(args, bed, table, done)
            network.ACTIVE_BEDS.remove(bed)


def run_one_bed(args, bed, table, done) -> None:
    """Calibration and the cells of one (M, link)."""
    m = bed.workers
    (profile, took), busy, attempt = watched(
        args, "calibration", lambda: calibrate(
            bed, args, args.out, network.Deadline(args.timeout)))
    print(f"  calibration: {took:.1f} s (worker's calibrate call)"
          + (f", busy: {busy[:3]}" if busy else ""), flush=True)
    if args.calibrate_only:
        return
    for density in args.densities:
        for option in args.options:
            if option == "dense" and density != args.densities[0]:
                continue  # dense does not depend on the density
            key = (m, bed.bandwidth, option, density)
            if key in done:
                continue
            row, busy, attempt = watched(
                args, f"{option} {density:g}", lambda: cell(
                    bed, args, option, density, profile, args.out))
            row.update(busy="; ".join(busy[:3]), attempt=attempt,
                       calibration_s=took)
            append(table, row)
            print(f"  {option:16s} {density:<6g} predicted "
                  f"{row['predicted_s']:.3f} s, measured "
                  f"{row['measured_s']:.3f} s ({row['error']:+.0%})",
                  flush=True)


def parse_args(argv):
    """The flags (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--links", nargs="+",
                    default=["loopback", "1gbit", "100mbit"])
    ap.add_argument("--options", nargs="+",
                    default=["dense", "allgather/int32", "allgather/rice",
                             "sharded/rice"])
    ap.add_argument("--densities", type=float, nargs="+",
                    default=[0.01, 0.001])
    ap.add_argument("--hidden", default="4096,2048")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=900,
                    help="seconds per job (calibration or cell)")
    ap.add_argument("--quiet-cmd", default=None,
                    help="run before each job, e.g. "
                         "'/work/briefs/quiet.sh 600'")
    ap.add_argument("--calibrate-only", action="store_true")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("timemodel"))
    args = ap.parse_args(argv)
    for option in args.options:
        policy.Option.parse(option)
    return args


def main(argv=None) -> int:
    """Runs the grid, then writes ``table.md``."""
    args = parse_args(argv)
    network.install_cleanup()
    try:
        run_grid(args)
    finally:
        network.cleanup()
    import timemodel_report

    print(timemodel_report.write(args.out))
    return 0


if __name__ == "__main__":
    network.run_main(main)
