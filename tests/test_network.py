"""Smoke test of benchmarks/network.py: 2 real workers, a few steps.

Loopback always; the namespace variant (tc-shaped veths on a bridge) only
as root where `ip netns` works, and it checks that nothing is left behind.
"""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from multiworker import ATTEMPTS, PORT_TAKEN

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "network.py"
SMALL_RUN = ["--workers", "2", "--hidden", "64", "--batch", "8",
             "--warmup", "1", "--steps", "2", "--densities", "0.01"]


#: Bound on one benchmark run (its own --timeout is 20 s less). A run takes
#: under a minute on the 2-core development machine at a load average of
#: 7; 10 minutes leaves room for a heavier load and still ends a hang.
TIMEOUT = 600


def run_benchmark(tmp_path, *extra, timeout=TIMEOUT):
    out = tmp_path / "network.csv"
    for _ in range(ATTEMPTS):  # again only when a worker's port was taken
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), *SMALL_RUN, *extra,
             "--timeout", str(timeout - 20), "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            cwd=ROOT)
        try:
            text, _ = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.terminate()   # the driver removes its namespaces
                proc.communicate(timeout=30)
        if proc.returncode == 0 or PORT_TAKEN not in text:
            break
    assert proc.returncode == 0, text[-4000:]
    with open(out) as f:
        return proc.pid, list(csv.DictReader(f)), text


def check_rows(rows, wire, aggregation="allgather"):
    methods = {(r["method"], r["wire"], r["aggregation"]) for r in rows}
    assert methods == {("dense", "fp32", "allreduce"),
                       ("ours", wire, aggregation)}, methods
    assert len(rows) == 4     # 2 methods x 2 workers
    for r in rows:
        assert float(r["wire_tx_bytes_per_step"]) > 0, r
        assert float(r["wire_rx_bytes_per_step"]) > 0, r
        assert float(r["library_bytes_per_step"]) > 0, r
        assert float(r["step_median_s"]) > 0, r
    dense = [float(r["wire_tx_bytes_per_step"]) for r in rows
             if r["method"] == "dense"]
    ours = [float(r["wire_tx_bytes_per_step"]) for r in rows
            if r["method"] == "ours"]
    assert min(dense) > max(ours)


def test_loopback(tmp_path):
    _, rows, text = run_benchmark(tmp_path, "--loopback")
    check_rows(rows, "int32")
    assert "dense/ours bytes" in text


def namespaces_usable() -> bool:
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("tc"):
        return False
    probe = f"tfssprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe],
                          capture_output=True).returncode == 0
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return made


@pytest.mark.skipif(not namespaces_usable(),
                    reason="needs root and working `ip netns`")
def test_namespaces_shaped_and_cleaned_up(tmp_path):
    pid, rows, _ = run_benchmark(tmp_path, "--bandwidth", "100mbit",
                                 "--wire", "rice", "--aggregation", "sharded")
    check_rows(rows, "rice", "sharded")
    assert {r["bandwidth"] for r in rows} == {"100mbit"}
    ours = f"tfss{pid}"
    left = subprocess.run(["ip", "netns", "list"], capture_output=True,
                          text=True).stdout.split()
    assert not [ns for ns in left if ns in (f"{ours}br", f"{ours}w0",
                                            f"{ours}w1")], left
    links = subprocess.run(["ip", "-o", "link"], capture_output=True,
                           text=True).stdout
    assert ours not in links
