"""Real workers over shaped links: bytes on the wire and step time, dense
all-reduce vs S3GD-MV (not a test; see docs/NETWORK.md).

    sudo python benchmarks/network.py --workers 4 --bandwidth 100mbit \\
        --hidden 4096,2048 --warmup 3 --steps 5 --out network.csv
    python benchmarks/network.py --loopback --workers 2 --hidden 256 \\
        --warmup 1 --steps 2 --out smoke.csv

What it does, per method (``dense``, then ``ours`` at each ``--densities``
value, for each ``--wire`` format):

1. **Test hosts** (root): one network namespace per worker and one for a
   bridge, all named ``tfss<pid>...``. Worker ``i`` gets ``eth0`` =
   198.18.0.<i+1>/24 (the benchmarking range, RFC 2544), a veth whose peer
   is a bridge port in the bridge namespace. Both directions of every link
   are shaped with ``tc tbf`` at ``--bandwidth`` (plus ``netem`` with
   ``--delay``, where the kernel has the netem qdisc). The bridge
   namespace has no uplink, no route and no NAT: no packet can leave.
   Everything is deleted on exit, on failure, on Ctrl-C / SIGTERM
   (try/finally, signal handlers, atexit).
   ``--loopback`` instead runs the same workers on 127.0.0.1, unshaped.
2. **Workers**: M real processes (``ip netns exec <ns> python
   network_worker.py train ...`` with ``TF_CONFIG``, started and killed by
   :class:`tf_sparsesign.experiments.cluster.LocalCluster`), all running
   the same custom training loop (``strategy.run`` + ``optimizer.apply_gradients``, Keras SGD) on the
   same MLP and the same synthetic data (worker ``i``'s batch is seeded by
   ``i``). Dense: plain ``tf.distribute.MultiWorkerMirroredStrategy``
   (Keras' dense gradient all-reduce, fp32 ring). Ours:
   ``tf_sparsesign.MultiWorkerSparseSignStrategy(density, wire=...,
   aggregation=...)`` for each ``--aggregation`` (allgather, sharded,
   sharded-topk).
   (A custom loop for both, because plain Keras 3.15 ``fit`` fails under
   MWMS, keras-team/keras#20585; same code path, so the comparison is fair.)
3. **Measurement**: workers run ``--warmup`` steps, report "warm" (a file)
   and wait; once all are warm the driver reads the interface counters and
   lets them go; they run ``--steps`` timed steps, report "done" and wait
   again while the driver reads the counters a second time. So TF's
   connection set-up and graph tracing traffic is excluded, and what is
   counted is everything the steps put on the link: payload, gRPC/HTTP2
   framing, TCP/IP/Ethernet headers, ACKs, retransmissions.
   *Bytes on the wire* per worker = its ``eth0`` tx_bytes delta (rx too);
   with ``--loopback`` there is one shared ``lo``, so the column is
   ``lo`` tx delta / M (and includes any other loopback traffic on the
   host). *Step time* = the worker's median over the timed steps.
   *Library bytes* = ``accounting.communication_stats`` ``bytes_sent``
   delta (ours), the ring formula ``2 (M-1)/M * 4 N`` (dense).
4. **Where the time goes** (an estimate): after the counters are read,
   each worker times on its own, without any collective, the library's own
   parts of its step at the real sizes
   (:func:`tf_sparsesign.calibration.compute.time_option`, built by
   :class:`tf_sparsesign.aggregation.probe.StepProbe`; the sharded
   exchange as one worker of M runs it): forward+backward of the same
   model; encode = finiteness check + error feedback and selection +
   the message (codec words, or the M buckets); vote = the host step
   (decode + vote of M rows, or of one shard and every shard's vote);
   apply = the sparse SGD write (dense: TF's pack/split around the
   all-reduce and Keras SGD's update). ``comm`` = median step time - those,
   i.e. the collectives including waiting for peers.
5. Prints a table with the ratios dense / ours and writes all per-worker
   rows to ``--out`` (CSV).

Bounded: ``--timeout`` for the whole run (workers are killed when it
expires; the collective timeout of each worker is the same), fixed step
counts. Needs root for namespaces (``--loopback`` otherwise).
"""

from __future__ import annotations

import argparse
import atexit
import csv
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

import netbed  # noqa: E402
from tf_sparsesign.experiments.cluster import LocalCluster  # noqa: E402

WORKER = Path(__file__).resolve().parent / "network_worker.py"
CSV_FIELDS = ["method", "wire", "density", "aggregation", "worker",
              "workers", "params",
              "bandwidth", "delay", "steps", "wire_tx_bytes_per_step",
              "wire_rx_bytes_per_step", "library_bytes_per_step",
              "step_median_s", "fwd_bwd_s", "encode_s", "vote_s", "apply_s",
              "comm_s"]
#: Everything the cleanup handlers must undo.
ACTIVE_CLUSTERS: list = []
ACTIVE_BEDS: list = []


class Deadline:
    """A point in time (``--timeout`` from now)."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds still left."""
        return self.end - time.monotonic()


def worker_cluster(bed, mode: str, worker_args, run_dir: Path,
                   deadline: Deadline) -> LocalCluster:
    """M workers of ``network_worker.py <mode>`` in ``bed``'s hosts, each in
    its own process group, logs in ``run_dir``."""
    run_dir.mkdir(parents=True)
    left = max(30, int(deadline.left()))
    return LocalCluster(
        bed.workers, lambda i: [sys.executable, str(WORKER), mode,
                                "--index", str(i), "--sync", str(run_dir),
                                "--timeout", str(left), *worker_args],
        cwd=ROOT, quiet=True, log_dir=run_dir, log_chief=True,
        hosts=bed.hosts(), prefix_for=bed.launcher, new_session=True,
        env={"PYTHONPATH": f"{ROOT}{os.pathsep}"
                           f"{os.environ.get('PYTHONPATH', '')}"})


def run_cluster(cluster: LocalCluster, run_dir: Path, deadline: Deadline,
                stages=()) -> list[dict]:
    """Starts ``cluster``; for each ``(stage, release, at_stage)`` waits
    until every worker wrote ``<stage>-<i>``, calls ``at_stage()`` and
    writes ``release``; returns the workers' results (fails fast when one
    dies)."""
    n = cluster.n

    def all_wrote(name, suffix=""):
        return lambda: all((run_dir / f"{name}-{i}{suffix}").exists()
                           for i in range(n))

    def finished(i):
        return (run_dir / f"result-{i}.json").exists()

    ACTIVE_CLUSTERS.append(cluster)
    try:
        with cluster:
            for stage, release, at_stage in stages:
                cluster.wait_until(all_wrote(stage), deadline.left(),
                                   f"'{stage}'", finished)
                at_stage()
                (run_dir / release).touch()
            cluster.wait_until(all_wrote("result", ".json"), deadline.left(),
                               "the results", finished)
            codes = cluster.wait(timeout=max(1.0, deadline.left()))
            bad = [i for i, c in enumerate(codes) if c != 0]
            if bad:
                raise RuntimeError(f"workers exited with {codes}:\n"
                                   f"{cluster.log_tail(bad[0])}")
    finally:
        ACTIVE_CLUSTERS.remove(cluster)
    return [json.loads((run_dir / f"result-{i}.json").read_text())
            for i in range(n)]


def worker_flags(method: dict, args) -> list[str]:
    """The worker's flags for ``method``."""
    return ["--method", method["name"], "--density", str(method["density"]),
            "--wire", method["wire"], "--aggregation", method["aggregation"],
            "--hidden", args.hidden, "--batch", str(args.batch),
            "--warmup", str(args.warmup), "--steps", str(args.steps),
            "--threads", str(args.threads)]


def run_method(bed, method: dict, args, run_dir: Path,
               deadline: Deadline) -> list[dict]:
    """One fresh cluster of M workers training with ``method``; returns one
    CSV row per worker."""
    counters = {}
    cluster = worker_cluster(bed, "train", worker_flags(method, args),
                             run_dir, deadline)
    results = run_cluster(cluster, run_dir, deadline, [
        ("warm", "go", lambda: counters.update(before=bed.counters())),
        ("done", "read", lambda: counters.update(after=bed.counters()))])
    return [result_row(method, args, bed, i, b, a, r) for i, (b, a, r) in
            enumerate(zip(counters["before"], counters["after"], results))]


def result_row(method, args, bed, index, before, after, result) -> dict:
    """One worker's CSV row."""
    steps = args.steps
    parts = result["breakdown"]
    sum_of = lambda prefixes: sum(v for k, v in parts.items()  # noqa: E731
                                  if k.split("/")[0] in prefixes)
    row = {
        "method": method["name"], "wire": method["wire"],
        "density": method["density"], "aggregation": method["aggregation"],
        "worker": index, "workers": args.workers, "params": result["params"],
        "bandwidth": bed.bandwidth, "delay": bed.delay or "",
        "steps": steps,
        "wire_tx_bytes_per_step": (after[0] - before[0]) / steps,
        "wire_rx_bytes_per_step": (after[1] - before[1]) / steps,
        "library_bytes_per_step": result["library_bytes"] / steps,
        "step_median_s": result["step_median_s"],
        "fwd_bwd_s": parts["forward_backward"],
        "encode_s": sum_of(("check_finite", "encode", "message")),
        "vote_s": sum_of(("host_step",)),
        "apply_s": sum_of(("apply", "dense_apply")),
    }
    row["comm_s"] = max(0.0, row["step_median_s"] - sum(parts.values()))
    return row


def methods_to_run(args) -> list[dict]:
    """Dense (unless ``--no-dense``), then ours for each exchange, wire and
    density."""
    methods = [] if args.no_dense else [
        {"name": "dense", "wire": "fp32", "density": 1.0,
         "aggregation": "allreduce", "label": "dense fp32 all-reduce"}]
    for aggregation in args.aggregation:
        for wire in args.wire:
            for density in args.densities:
                methods.append({"name": "ours", "wire": wire,
                                "density": density,
                                "aggregation": aggregation,
                                "label": f"ours {aggregation} {wire} "
                                         f"{density:g}"})
    return methods


def summarize(rows: list[dict]) -> list[dict]:
    """Per method: mean over workers (bytes), median of workers' medians
    (time), and ratios against the dense row."""
    keys = []
    for r in rows:
        key = (r["method"], r["aggregation"], r["wire"], r["density"])
        if key not in keys:
            keys.append(key)
    out = []
    for key in keys:
        mine = [r for r in rows if (r["method"], r["aggregation"], r["wire"],
                                    r["density"]) == key]
        avg = {f: statistics.mean(r[f] for r in mine) for f in
               ("wire_tx_bytes_per_step", "wire_rx_bytes_per_step",
                "library_bytes_per_step", "fwd_bwd_s", "encode_s",
                "vote_s", "apply_s", "comm_s")}
        avg["step_median_s"] = statistics.median(r["step_median_s"]
                                                 for r in mine)
        out.append({"method": key[0], "aggregation": key[1], "wire": key[2],
                    "density": key[3], **avg})
    dense = next((s for s in out if s["method"] == "dense"), None)
    for s in out:
        s["bytes_ratio"] = (dense["wire_tx_bytes_per_step"] /
                            s["wire_tx_bytes_per_step"]
                            if dense and s["wire_tx_bytes_per_step"] else
                            float("nan"))
        s["time_ratio"] = (dense["step_median_s"] / s["step_median_s"]
                           if dense and s["step_median_s"] else float("nan"))
    return out


def _ratio(x: float) -> str:
    """``"12.3x"``, or a dash for NaN (no dense row)."""
    return "—" if x != x else f"{x:.1f}x"  # NaN: no dense row (--no-dense)


def format_table(summary: list[dict]) -> str:
    """The Markdown table printed at the end."""
    head = ("| method | exchange | wire | density | wire tx B/step/worker | "
            "library B/step | step median s | dense/ours bytes | "
            "dense/ours time | fwd+bwd s | encode s | comm s | vote s | "
            "apply s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for s in summary:
        density = "—" if s["method"] == "dense" else f"{s['density']:g}"
        lines.append(
            f"| {s['method']} | {s['aggregation']} | {s['wire']} | "
            f"{density} | "
            f"{s['wire_tx_bytes_per_step']:,.0f} | "
            f"{s['library_bytes_per_step']:,.0f} | "
            f"{s['step_median_s']:.3f} | {_ratio(s['bytes_ratio'])} | "
            f"{_ratio(s['time_ratio'])} | {s['fwd_bwd_s']:.3f} | "
            f"{s['encode_s']:.3f} | {s['comm_s']:.3f} | "
            f"{s['vote_s']:.3f} | {s['apply_s']:.3f} |")
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict]) -> None:
    """All per-worker rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def cleanup() -> None:
    """Kills every running worker and removes every test host."""
    for cluster in list(ACTIVE_CLUSTERS):
        cluster.kill()
    for bed in list(ACTIVE_BEDS):
        bed.remove()


def on_signal(signum, frame):
    """Turns a signal into an exception, so every ``finally`` runs."""
    # Turn the signal into an exception so every finally block runs.
    # SIGINT is installed explicitly: a background job inherits it ignored.
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def install_cleanup() -> None:
    """Workers killed and test hosts removed on exit, Ctrl-C, SIGTERM and
    SIGHUP."""
    atexit.register(cleanup)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)


def parse_args(argv):
    """The driver's flags (docs/NETWORK.md lists them)."""
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--bandwidth", default="100mbit",
                    help="tc rate per link and direction (e.g. 100mbit)")
    ap.add_argument("--delay", default=None,
                    help="optional netem delay per link direction (e.g. 1ms)")
    ap.add_argument("--loopback", action="store_true",
                    help="127.0.0.1, no namespaces, no shaping, no root")
    ap.add_argument("--hidden", default="4096,2048",
                    help="MLP hidden sizes (784 -> hidden -> 10); the "
                         "default has 11,626,506 parameters")
    ap.add_argument("--batch", type=int, default=32,
                    help="batch per worker")
    ap.add_argument("--densities", type=float, nargs="+",
                    default=[0.01, 0.001])
    ap.add_argument("--wire", nargs="+", default=["int32"],
                    help="wire formats of ours (int32, rice); passed to "
                         "MultiWorkerSparseSignStrategy(wire=...)")
    ap.add_argument("--aggregation", nargs="+", default=["allgather"],
                    help="exchanges of ours: allgather, sharded (exact "
                         "downlink), sharded-topk")
    ap.add_argument("--no-dense", action="store_true",
                    help="skip the dense baseline")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1,
                    help="TF intra-op threads per worker")
    ap.add_argument("--timeout", type=float, default=1200,
                    help="seconds for the whole run; workers are killed")
    ap.add_argument("--out", type=Path, default=Path("network.csv"))
    args = ap.parse_args(argv)
    if args.workers < 2 or args.workers > 250:
        ap.error("--workers must be in 2..250")
    if args.warmup < 1 or args.steps < 1:
        ap.error("--warmup and --steps must be >= 1")
    return args


def main(argv=None) -> int:
    """Runs every method on fresh clusters; prints the table."""
    args = parse_args(argv)
    install_cleanup()
    deadline = Deadline(args.timeout)
    bed = netbed.testbed(args.workers, "loopback" if args.loopback else
                         args.bandwidth, args.delay)
    ACTIVE_BEDS.append(bed)
    rows: list[dict] = []
    work = Path(tempfile.mkdtemp(prefix="tfss-network-"))
    try:
        with bed:
            print(f"test hosts: {bed.describe()}", flush=True)
            for n, method in enumerate(methods_to_run(args)):
                t0 = time.monotonic()
                rows += run_method(bed, method, args, work / f"m{n}",
                                   deadline)
                print(f"  {method['label']}: {time.monotonic() - t0:.0f} s",
                      flush=True)
    finally:
        cleanup()
        ACTIVE_BEDS.clear()
        if rows:
            write_csv(args.out, rows)
        shutil.rmtree(work, ignore_errors=True)
    print(format_table(summarize(rows)))
    print(f"per-worker rows: {args.out}")
    return 0


def run_main(main_fn) -> None:
    """``main_fn()`` with the exit messages every driver gives."""
    try:
        sys.exit(main_fn())
    except KeyboardInterrupt:
        print("interrupted; workers killed, test hosts removed",
              file=sys.stderr)
        sys.exit(130)
    except (RuntimeError, TimeoutError) as exc:
        print(f"{Path(sys.argv[0]).name}: {exc}\n(workers killed, test "
              "hosts removed)", file=sys.stderr)
        sys.exit(1)
    except SystemExit as stop:
        if stop.code not in (0, None):
            print(f"stopped ({stop.code}); workers killed, test hosts "
                  "removed", file=sys.stderr)
        raise


if __name__ == "__main__":
    run_main(main)
