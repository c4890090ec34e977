"""Starts real worker processes on 127.0.0.1 with TF_CONFIG (bounded)."""

import sys
import time
from pathlib import Path

import numpy as np

from tf_sparsesign.experiments.cluster import LocalCluster

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().parent / "workers" / "mw_fit.py"

#: Bound on one job. A 3-worker job takes under a minute on the 2-core
#: development machine at a load average of 7; 10 minutes leaves room for
#: a heavier load and still ends a hang (the workers' collective timeout,
#: 300 s by default, is below it, so a stuck worker reports its error).
JOB_TIMEOUT = 600
#: What a worker says when its port was taken between free_ports() and
#: its gRPC server's bind (another process on the machine got it first):
#: the one failure that starting again on other ports fixes.
PORT_TAKEN = "Could not start gRPC server"
ATTEMPTS = 3


def run_workers(n, tmp_path, *args, timeout=JOB_TIMEOUT, worker=WORKER):
    """Runs n workers (``worker``: the script, default mw_fit.py); returns
    [(returncode, npz-dict, log)] per worker (returncode None: still running
    at the timeout, then killed). A job whose port was taken before a
    worker could bind it is stopped at once and started again on other
    ports (at most ATTEMPTS times)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    outs = [tmp_path / f"worker{i}.npz" for i in range(n)]
    paths = [tmp_path / f"worker{i}.log" for i in range(n)]
    for _ in range(ATTEMPTS):
        for out in outs:
            out.unlink(missing_ok=True)
        codes = _run_once(n, worker, args, outs, paths, timeout)
        if not any(PORT_TAKEN in p.read_text(errors="replace")
                   for p in paths):
            break
    return [(code, dict(np.load(out)) if out.exists() else {},
             path.read_text(errors="replace")[-4000:])
            for code, out, path in zip(codes, outs, paths)]


def _run_once(n, worker, args, outs, paths, timeout):
    logs = [open(p, "w") for p in paths]
    try:
        with LocalCluster(n, lambda i: [sys.executable, str(worker),
                                        str(outs[i]), *args],
                          output_for=lambda i: logs[i], cwd=ROOT) as cluster:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not _port_taken(
                    cluster, paths) and any(p.poll() is None
                                            for p in cluster.procs):
                time.sleep(0.5)  # polling; no outcome depends on its length
            codes = cluster.wait(0 if _port_taken(cluster, paths) else
                                 max(deadline - time.monotonic(), 0))
    finally:
        for log in logs:
            log.close()
    return codes


def _port_taken(cluster, paths) -> bool:
    """Has a worker exited because its port was taken? (The others would
    wait for it until their timeout.)"""
    return any(proc.poll() not in (None, 0) and PORT_TAKEN in
               path.read_text(errors="replace")
               for proc, path in zip(cluster.procs, paths))
