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
2. **Workers**: M real processes (``ip netns exec <ns> python network.py
   _worker ...`` with ``TF_CONFIG``), all running the same custom training
   loop (``strategy.run`` + ``optimizer.apply_gradients``, Keras SGD) on the
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
   each worker times on its own, without any collective, the pieces of a
   step at the real sizes: forward+backward of the same model, encode
   (``check_finite`` and the fused ``accumulate_encode`` per variable, plus
   ``rice_encode`` for ``wire=rice``), vote (``sparse_majority_vote`` over M rows of the real
   message size, or a shard's share of them, plus ``rice_decode``), apply
   (dense: the SGD update of all variables; ours: ``scatter_sub`` of the
   voted coordinates). ``comm`` = median step time - those, i.e. the
   exchange (ours) or all-reduce (dense) including waiting for peers.
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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREFIX = f"tfss{os.getpid()}"
SUBNET = "198.18.0"            # 198.18.0.0/15 is reserved for benchmarking
PORT = 23456                   # each worker has its own address: one port
POLL_SECONDS = 0.05
INPUTS, CLASSES = 784, 10

CSV_FIELDS = ["method", "wire", "density", "aggregation", "worker",
              "workers", "params",
              "bandwidth", "delay", "steps", "wire_tx_bytes_per_step",
              "wire_rx_bytes_per_step", "library_bytes_per_step",
              "step_median_s", "fwd_bwd_s", "encode_s", "vote_s", "apply_s",
              "comm_s"]


# --------------------------------------------------------------------------
# Test hosts
# --------------------------------------------------------------------------

def sh(*cmd: str, check: bool = True) -> str:
    """Runs a command; a failure names the command and its stderr."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed ({proc.returncode}): "
                           f"{proc.stderr.strip()}")
    return proc.stdout


def namespaces_with_prefix(prefix: str) -> list[str]:
    out = sh("ip", "netns", "list", check=False)
    return [line.split()[0] for line in out.splitlines()
            if line.split() and line.split()[0].startswith(prefix)]


class NamespaceTestbed:
    """M worker namespaces on one bridge (in its own namespace), every link
    shaped in both directions. Use as a context manager."""

    def __init__(self, workers: int, bandwidth: str, delay: str | None,
                 prefix: str = PREFIX):
        self.workers = workers
        self.bandwidth = bandwidth
        self.delay = delay
        self.prefix = prefix
        self.bridge_ns = f"{prefix}br"
        self.worker_ns = [f"{prefix}w{i}" for i in range(workers)]
        self.addresses = [f"{SUBNET}.{i + 1}" for i in range(workers)]

    @staticmethod
    def check_allowed() -> None:
        if os.geteuid() != 0:
            raise SystemExit("network.py: needs root for ip netns and tc; "
                             "use --loopback to run without namespaces")
        for tool in ("ip", "tc"):
            if shutil.which(tool) is None:
                raise SystemExit(f"network.py: `{tool}` not found (iproute2)"
                                 "; use --loopback")

    def __enter__(self):
        self.check_allowed()
        try:
            self._create()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc):
        self.remove()

    def _create(self) -> None:
        sh("ip", "netns", "add", self.bridge_ns)
        self._quiet_namespace(self.bridge_ns)
        sh("ip", "-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.bridge_ns, "link", "set", "br0", "up")
        for i, (ns, addr) in enumerate(zip(self.worker_ns, self.addresses)):
            sh("ip", "netns", "add", ns)
            self._quiet_namespace(ns)
            port = f"v{i}"
            # Created inside the namespaces directly: nothing ever appears
            # in the root namespace.
            sh("ip", "-n", self.bridge_ns, "link", "add", port, "type",
               "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", self.bridge_ns, "link", "set", port, "master",
               "br0")
            sh("ip", "-n", self.bridge_ns, "link", "set", port, "up")
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            self._shape(ns, "eth0")               # worker -> bridge (up)
            self._shape(self.bridge_ns, port)     # bridge -> worker (down)

    @staticmethod
    def _quiet_namespace(ns: str) -> None:
        """No IPv6 (router solicitations, DAD) on our links: only the
        workers' own traffic is counted. Best effort."""
        sh("ip", "netns", "exec", ns, "sysctl", "-qw",
           "net.ipv6.conf.all.disable_ipv6=1", check=False)
        sh("ip", "netns", "exec", ns, "sysctl", "-qw",
           "net.ipv6.conf.default.disable_ipv6=1", check=False)

    def _shape(self, ns: str, dev: str) -> None:
        """tbf at the link rate (burst: 10 ms of traffic, at least 32 KiB,
        so GSO segments pass; queue: 100 ms), behind netem if --delay."""
        rate_bps = parse_rate(self.bandwidth)
        burst = max(32 * 1024, rate_bps // 8 // 100)
        tbf = ["tbf", "rate", self.bandwidth, "burst", str(burst),
               "latency", "100ms"]
        if self.delay:
            try:
                sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev",
                   dev, "root", "handle", "1:", "netem", "delay",
                   self.delay, "limit", "100000")
            except RuntimeError as exc:
                raise RuntimeError(
                    f"--delay needs the netem qdisc (kernel module "
                    f"sch_netem), which this kernel refused: {exc}") from exc
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev,
               "parent", "1:1", "handle", "10:", *tbf)
        else:
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev,
               "root", "handle", "1:", *tbf)

    def remove(self) -> None:
        """Deletes every namespace with our prefix (their veths, bridge and
        qdiscs go with them). Idempotent, safe from signal handlers."""
        for ns in namespaces_with_prefix(self.prefix):
            sh("ip", "netns", "del", ns, check=False)

    def launcher(self, index: int) -> list[str]:
        return ["ip", "netns", "exec", self.worker_ns[index]]

    def hosts(self) -> list[str]:
        return [f"{addr}:{PORT}" for addr in self.addresses]

    def counters(self) -> list[tuple[int, int]]:
        """(tx_bytes, rx_bytes) of each worker's eth0."""
        return [link_bytes(["-n", ns], "eth0") for ns in self.worker_ns]

    def describe(self) -> str:
        delay = f", netem delay {self.delay}" if self.delay else ""
        return (f"{self.workers} namespaces on a bridge, tbf {self.bandwidth}"
                f" each way per link{delay}")


class LoopbackTestbed:
    """The same workers on 127.0.0.1: no root, no shaping, one shared lo."""

    def __init__(self, workers: int):
        self.workers = workers
        self.bandwidth, self.delay = "loopback", None
        from tf_sparsesign.experiments.cluster import free_ports

        self._ports = free_ports(workers)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def remove(self) -> None:
        pass

    def launcher(self, index: int) -> list[str]:
        return []

    def hosts(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self._ports]

    def counters(self) -> list[tuple[int, int]]:
        """lo is shared: every worker gets 1/M of its counters."""
        tx, rx = link_bytes([], "lo")
        return [(tx // self.workers, rx // self.workers)] * self.workers

    def describe(self) -> str:
        return f"{self.workers} workers on 127.0.0.1 (unshaped, shared lo)"


def link_bytes(netns_args: list[str], dev: str) -> tuple[int, int]:
    out = sh("ip", *netns_args, "-j", "-s", "link", "show", "dev", dev)
    stats = json.loads(out)[0]["stats64"]
    return int(stats["tx"]["bytes"]), int(stats["rx"]["bytes"])


def parse_rate(rate: str) -> int:
    """tc rate ('100mbit', '1gbit', '500kbit') in bits per second."""
    units = {"gbit": 10**9, "mbit": 10**6, "kbit": 10**3, "bit": 1}
    for unit, scale in units.items():
        if rate.lower().endswith(unit):
            return int(float(rate[:-len(unit)]) * scale)
    raise ValueError(f"--bandwidth: expected e.g. 100mbit, got {rate!r}")


# --------------------------------------------------------------------------
# Driver: one method = one fresh cluster of M worker processes
# --------------------------------------------------------------------------

class Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


class WorkerGroup:
    """M worker processes of one method, synchronised through files."""

    def __init__(self, bed, method: dict, args, run_dir: Path,
                 deadline: Deadline):
        self.bed, self.method, self.args = bed, method, args
        self.dir = run_dir
        self.deadline = deadline
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def start(self) -> None:
        self.dir.mkdir(parents=True)
        from tf_sparsesign.experiments.cluster import worker_env

        hosts = self.bed.hosts()
        for i in range(len(hosts)):
            env = worker_env(hosts, i)
            env["PYTHONPATH"] = (f"{ROOT}{os.pathsep}"
                                 f"{os.environ.get('PYTHONPATH', '')}")
            log = self.dir / f"worker{i}.log"
            self.logs.append(log)
            cmd = [*self.bed.launcher(i), sys.executable, __file__,
                   "_worker", *self.worker_args(i)]
            with open(log, "w") as out:
                # Own process group: killed as a group on timeout/failure.
                self.procs.append(subprocess.Popen(
                    cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                    cwd=ROOT, start_new_session=True))

    def worker_args(self, index: int) -> list[str]:
        a, m = self.args, self.method
        return ["--index", str(index), "--sync", str(self.dir),
                "--method", m["name"], "--density", str(m["density"]),
                "--wire", m["wire"], "--aggregation", m["aggregation"],
                "--hidden", a.hidden,
                "--batch", str(a.batch), "--warmup", str(a.warmup),
                "--steps", str(a.steps), "--threads", str(a.threads),
                "--timeout", str(max(30, int(self.deadline.left())))]

    def wait_for(self, stage: str) -> None:
        """Until every worker wrote ``<stage>-<i>``; fails fast if one dies
        or the deadline passes."""
        want = [self.dir / f"{stage}-{i}" for i in range(len(self.procs))]
        while not all(p.exists() for p in want):
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None and not want[i].exists():
                    raise RuntimeError(
                        f"{self.method['label']}: worker {i} exited "
                        f"({proc.returncode}) before '{stage}':\n"
                        f"{self.log_tail(i)}")
            if self.deadline.left() <= 0:
                raise TimeoutError(f"{self.method['label']}: --timeout "
                                   f"expired waiting for '{stage}'")
            time.sleep(POLL_SECONDS)

    def release(self, stage: str) -> None:
        (self.dir / stage).touch()

    def results(self) -> list[dict]:
        for i, proc in enumerate(self.procs):
            try:
                proc.wait(timeout=max(1.0, self.deadline.left()))
            except subprocess.TimeoutExpired:
                raise TimeoutError(f"{self.method['label']}: worker {i} did "
                                   "not finish before --timeout") from None
            if proc.returncode != 0:
                raise RuntimeError(f"{self.method['label']}: worker {i} "
                                   f"failed ({proc.returncode}):\n"
                                   f"{self.log_tail(i)}")
        return [json.loads((self.dir / f"result-{i}.json").read_text())
                for i in range(len(self.procs))]

    def log_tail(self, index: int, chars: int = 3000) -> str:
        try:
            return self.logs[index].read_text()[-chars:]
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()


def run_method(bed, method: dict, args, run_dir: Path,
               deadline: Deadline) -> list[dict]:
    """One fresh cluster; returns one CSV row per worker."""
    group = WorkerGroup(bed, method, args, run_dir, deadline)
    ACTIVE_GROUPS.append(group)
    try:
        group.start()
        group.wait_for("warm")
        before = bed.counters()
        group.release("go")
        group.wait_for("done")
        after = bed.counters()
        group.release("read")
        results = group.results()
    finally:
        group.kill()
        ACTIVE_GROUPS.remove(group)
    return [result_row(method, args, bed, i, b, a, r)
            for i, (b, a, r) in enumerate(zip(before, after, results))]


def result_row(method, args, bed, index, before, after, result) -> dict:
    steps = args.steps
    parts = result["breakdown"]
    local = sum(parts.values())
    return {
        "method": method["name"], "wire": method["wire"],
        "density": method["density"], "aggregation": method["aggregation"],
        "worker": index,
        "workers": args.workers, "params": result["params"],
        "bandwidth": bed.bandwidth, "delay": bed.delay or "",
        "steps": steps,
        "wire_tx_bytes_per_step": (after[0] - before[0]) / steps,
        "wire_rx_bytes_per_step": (after[1] - before[1]) / steps,
        "library_bytes_per_step": result["library_bytes"] / steps,
        "step_median_s": result["step_median_s"],
        "fwd_bwd_s": parts["fwd_bwd"], "encode_s": parts["encode"],
        "vote_s": parts["vote"], "apply_s": parts["apply"],
        "comm_s": max(0.0, result["step_median_s"] - local),
    }


def methods_to_run(args) -> list[dict]:
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
    return "—" if x != x else f"{x:.1f}x"  # NaN: no dense row (--no-dense)


def format_table(summary: list[dict]) -> str:
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
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


# Everything the cleanup handlers must undo.
ACTIVE_GROUPS: list[WorkerGroup] = []
ACTIVE_BEDS: list = []


def cleanup() -> None:
    for group in list(ACTIVE_GROUPS):
        group.kill()
    for bed in list(ACTIVE_BEDS):
        bed.remove()


def on_signal(signum, frame):
    # Turn the signal into an exception so every finally block runs.
    # SIGINT is installed explicitly: a background job inherits it ignored.
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def parse_args(argv):
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
    args = parse_args(argv)
    atexit.register(cleanup)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    deadline = Deadline(args.timeout)
    bed = (LoopbackTestbed(args.workers) if args.loopback else
           NamespaceTestbed(args.workers, args.bandwidth, args.delay))
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
    summary = summarize(rows)
    print(format_table(summary))
    print(f"per-worker rows: {args.out}")
    return 0


# --------------------------------------------------------------------------
# Worker (runs inside a namespace; imports TensorFlow)
# --------------------------------------------------------------------------

def worker_main(argv) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=int, required=True)
    ap.add_argument("--sync", type=Path, required=True)
    ap.add_argument("--method", choices=["dense", "ours"], required=True)
    ap.add_argument("--density", type=float, default=0.01)
    ap.add_argument("--wire", default="int32")
    ap.add_argument("--aggregation", default="allgather")
    ap.add_argument("--hidden", default="4096,2048")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args(argv)
    deadline = Deadline(args.timeout)

    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    import keras

    import tf_sparsesign

    hidden = [int(h) for h in args.hidden.split(",") if h]
    workers = len(json.loads(os.environ["TF_CONFIG"])["cluster"]["worker"])
    strategy = make_strategy(args, tf, tf_sparsesign)
    with strategy.scope():
        model = build_mlp(keras, hidden)
        optimizer = keras.optimizers.SGD(1e-3)
        optimizer.build(model.trainable_variables)
    x, y = synthetic_batch(np, args.index, args.batch)

    @tf.function
    def train_step(xb, yb):
        def replica_step(xb, yb):
            with tf.GradientTape() as tape:
                logits = model(xb, training=True)
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(yb, logits))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss
        return strategy.run(replica_step, args=(xb, yb))

    def one_step() -> float:
        t0 = time.perf_counter()
        loss = train_step(x, y)
        strategy.experimental_local_results(loss)[0].numpy()  # wait
        return time.perf_counter() - t0

    for _ in range(args.warmup):
        one_step()
    sent_before = library_bytes_sent(tf_sparsesign, optimizer)
    signal_and_wait(args.sync, "warm", args.index, "go", deadline)
    times = [one_step() for _ in range(args.steps)]
    sent = library_bytes_sent(tf_sparsesign, optimizer) - sent_before
    params = int(sum(np.prod(v.shape) for v in model.trainable_variables))
    if args.method == "dense":
        from tf_sparsesign.policy import dense_ring_bytes
        sent = dense_ring_bytes(params, workers) * args.steps
    signal_and_wait(args.sync, "done", args.index, "read", deadline)

    # Counters are read: local timing only from here on.
    breakdown = time_step_parts(args, hidden, workers, x, y)
    result = {"params": params, "step_times_s": times,
              "step_median_s": statistics.median(times),
              "library_bytes": sent, "breakdown": breakdown}
    (args.sync / f"result-{args.index}.json").write_text(json.dumps(result))
    print("worker", args.index, json.dumps(result), flush=True)
    sys.stdout.flush()
    # Skip TF's interpreter teardown (can hang on collective threads).
    os._exit(0)


def make_strategy(args, tf, tf_sparsesign):
    if args.method == "dense":
        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=float(args.timeout))
        return tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=options)
    aggregation, _, downlink = args.aggregation.partition("-")
    return tf_sparsesign.MultiWorkerSparseSignStrategy(
        density=args.density, wire=args.wire, aggregation=aggregation,
        downlink=downlink or "exact", timeout_seconds=float(args.timeout))


def build_mlp(keras, hidden):
    keras.utils.set_random_seed(0)   # same initial weights on every worker
    layers = [keras.Input((INPUTS,))]
    layers += [keras.layers.Dense(h, activation="relu") for h in hidden]
    layers += [keras.layers.Dense(CLASSES)]
    return keras.Sequential(layers)


def synthetic_batch(np, index, batch):
    rng = np.random.default_rng(1000 + index)
    return (rng.standard_normal((batch, INPUTS)).astype(np.float32),
            rng.integers(0, CLASSES, batch).astype(np.int32))


def library_bytes_sent(tf_sparsesign, optimizer) -> int:
    stats = tf_sparsesign.accounting.communication_stats(optimizer)
    return 0 if stats is None else int(stats["bytes_sent"])


def signal_and_wait(sync: Path, mine: str, index: int, wanted: str,
                    deadline: Deadline) -> None:
    (sync / f"{mine}-{index}").touch()
    while not (sync / wanted).exists():
        if deadline.left() <= 0:
            raise TimeoutError(f"worker {index}: no '{wanted}' from driver")
        time.sleep(POLL_SECONDS / 2)


def time_step_parts(args, hidden, workers, x, y) -> dict:
    """Medians of the step's pieces at the real sizes, on this worker alone
    (no collective): fwd_bwd, encode, vote, apply (seconds)."""
    import keras
    import tensorflow as tf

    model = build_mlp(keras, hidden)
    variables = model.trainable_variables
    lr = tf.constant(1e-3)

    @tf.function
    def fwd_bwd():
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        return tape.gradient(loss, variables)

    grads = fwd_bwd()

    @tf.function
    def apply(updates):
        for v, u in zip(variables, updates):
            v.assign_sub(lr * u)

    parts = {"fwd_bwd": median_time(fwd_bwd), "encode": 0.0, "vote": 0.0,
             "apply": median_time(lambda: apply(grads))}
    if args.method == "ours":
        parts.update(time_encode_vote_apply(args, grads, variables, workers))
    return parts


def time_encode_vote_apply(args, grads, variables, workers) -> dict:
    """What the library does per step outside the collectives, timed with
    its own ops: the finiteness check and the fused error-feedback encode
    of every variable into one global message (+ Rice encode), the sparse vote of M such rows (+ Rice
    decode; sharded: the M buckets of one shard), and plain SGD's sparse
    apply of the voted coordinates. M copies of this worker's message: the
    cost depends on the sizes, not on which indices were sent."""
    import tensorflow as tf

    from tf_sparsesign import ops, policy

    sizes = [int(tf.size(g)) for g in grads]
    total = sum(sizes)
    ks = policy.allocate(sizes, args.density, None, workers)
    memories = [tf.Variable(tf.zeros_like(g)) for g in grads]
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    rice = args.wire == "rice"
    max_words = policy.rice_max_words(total, sum(ks))

    @tf.function
    def encode():
        pieces = []
        for g, memory, k, offset in zip(grads, memories, ks, offsets):
            g = ops.check_finite(g, "gradient")  # the step's guard
            codes = ops.accumulate_encode(memory, g, k)
            pieces.append(tf.where(codes >= 0, codes + 2 * offset, codes))
        message = tf.concat(pieces, 0)
        if rice:
            message = ops.rice_encode(message, total, pad_to=max_words)
        return message

    rows = tf.stack([encode()] * workers)
    share = workers if args.aggregation.startswith("sharded") else 1

    @tf.function
    def vote():
        codes = ops.rice_decode(rows, total, sum(ks)) if rice else rows
        # Sharded: a replica votes one shard, about 1/M of the codes.
        return ops.sparse_majority_vote(codes[:, ::share], total)

    indices, votes = vote()
    flat = [tf.Variable(tf.reshape(v, [-1])) for v in variables]

    @tf.function
    def apply():
        at = tf.searchsorted(indices, offsets + [total])
        for j, v in enumerate(flat):
            local = indices[at[j]:at[j + 1]] - offsets[j]
            ops.scatter_sub(v, local, 1e-3 * votes[at[j]:at[j + 1]])

    return {"encode": median_time(encode), "vote": median_time(vote),
            "apply": median_time(apply)}


def median_time(fn, reps: int = 3) -> float:
    import tensorflow as tf

    def run_to_completion():
        out = fn()
        if out is not None:
            tf.nest.map_structure(lambda t: t.numpy(), out)

    run_to_completion()  # trace + warm
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run_to_completion()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        sys.exit(worker_main(sys.argv[2:]))
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; workers killed, test hosts removed",
              file=sys.stderr)
        sys.exit(130)
    except (RuntimeError, TimeoutError) as exc:
        print(f"network.py: {exc}\n(workers killed, test hosts removed)",
              file=sys.stderr)
        sys.exit(1)
    except SystemExit as stop:
        if stop.code not in (0, None):
            print(f"stopped ({stop.code}); workers killed, test hosts "
                  "removed", file=sys.stderr)
        raise
