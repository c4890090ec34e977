"""Starts real worker processes on 127.0.0.1 with TF_CONFIG (bounded)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().parent / "workers" / "mw_fit.py"


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def run_workers(n, tmp_path, *args, timeout=240):
    """Runs n workers; returns [(returncode, npz-dict, log)] per worker."""
    hosts = [f"127.0.0.1:{p}" for p in free_ports(n)]
    tmp_path.mkdir(parents=True, exist_ok=True)
    procs = []
    for i in range(n):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                   TF_CONFIG=json.dumps({"cluster": {"worker": hosts},
                                         "task": {"type": "worker",
                                                  "index": i}}))
        out = tmp_path / f"worker{i}.npz"
        log = open(tmp_path / f"worker{i}.log", "w")
        procs.append((subprocess.Popen(
            [sys.executable, str(WORKER), str(out), *args], env=env,
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT), out, log))
    results = []
    try:
        for proc, out, log in procs:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
            import numpy as np

            data = dict(np.load(out)) if out.exists() else {}
            text = Path(log.name).read_text()[-4000:]
            results.append((proc.returncode, data, text))
    finally:
        for proc, _, log in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    return results
