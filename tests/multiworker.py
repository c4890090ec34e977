"""Starts real worker processes on 127.0.0.1 with TF_CONFIG (bounded)."""

import sys
from pathlib import Path

import numpy as np

from tf_sparsesign.experiments.cluster import LocalCluster

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().parent / "workers" / "mw_fit.py"


def run_workers(n, tmp_path, *args, timeout=240, worker=WORKER):
    """Runs n workers (``worker``: the script, default mw_fit.py); returns
    [(returncode, npz-dict, log)] per worker (returncode None: still running
    at the timeout, then killed)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    outs = [tmp_path / f"worker{i}.npz" for i in range(n)]
    logs = [open(tmp_path / f"worker{i}.log", "w") for i in range(n)]
    try:
        with LocalCluster(n, lambda i: [sys.executable, str(worker),
                                        str(outs[i]), *args],
                          output_for=lambda i: logs[i], cwd=ROOT) as cluster:
            codes = cluster.wait(timeout)
    finally:
        for log in logs:
            log.close()
    return [(code, dict(np.load(out)) if out.exists() else {},
             Path(log.name).read_text()[-4000:])
            for code, out, log in zip(codes, outs, logs)]
