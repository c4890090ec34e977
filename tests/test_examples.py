"""The examples users copy must run as shipped."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from multiworker import ATTEMPTS, PORT_TAKEN

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["fit_mirrored.py", "optimizer_wrapper.py", "custom_loop.py",
            "export_for_serving.py",
            "multiworker/launch.py"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(name):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    for _ in range(ATTEMPTS):  # again only when a worker's port was taken
        # 20 minutes: an example takes at most 4.5 minutes on the 2-core
        # development machine at a load average of 8 (4x its cores); above
        # launch.py's own 10-minute bound on its workers, so a stuck
        # multi-worker example still reports its workers' logs.
        proc = subprocess.run([sys.executable,
                               str(ROOT / "examples" / name)],
                              capture_output=True, text=True, timeout=1200,
                              cwd=ROOT, env=env)
        if proc.returncode == 0 or PORT_TAKEN not in proc.stderr:
            break
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    if name == "multiworker/launch.py":  # only the chief prints progress
        lines = proc.stdout.splitlines()
        assert sum(line.startswith("Epoch 1/3") for line in lines) == 1
        assert sum(line.startswith("final ") for line in lines) == 1
