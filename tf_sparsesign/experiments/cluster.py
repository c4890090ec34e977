"""A local multi-worker cluster: free ports, ``TF_CONFIG``, worker processes.

Shared by the tests, the benchmarks and the multi-worker example: every
worker process gets the same cluster list on 127.0.0.1 and its own index.
Waiting is bounded, and leftover processes are killed on the way out.

Example:

>>> hosts = [f"127.0.0.1:{p}" for p in free_ports(2)]
>>> tf_config(hosts, 1)["task"]
{'type': 'worker', 'index': 1}
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from typing import Callable, Sequence


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct TCP ports free on ``host`` right now (all bound at
    once, so they differ, then released for the workers to take)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tf_config(hosts: Sequence[str], index: int) -> dict:
    """The ``TF_CONFIG`` of worker ``index`` in a cluster of ``hosts``."""
    return {"cluster": {"worker": list(hosts)},
            "task": {"type": "worker", "index": int(index)}}


def worker_env(hosts: Sequence[str], index: int, base=None) -> dict:
    """An environment for worker ``index``: ``base`` (default: this
    process's) plus its ``TF_CONFIG`` and TensorFlow's INFO logs off."""
    env = dict(os.environ if base is None else base)
    env["TF_CONFIG"] = json.dumps(tf_config(hosts, index))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


class LocalCluster:
    """``n`` worker processes on 127.0.0.1, started on ``__enter__``.

    Args:
      n: number of workers.
      argv_for: the command line of worker ``index``.
      output_for: optional ``index -> file object`` for the worker's stdout
        and stderr (default: inherited).
      cwd: working directory of the workers.

    Example::

        with LocalCluster(2, lambda i: [sys.executable, "worker.py"]) as c:
            codes = c.wait(timeout=600)
    """

    def __init__(self, n: int, argv_for: Callable[[int], list],
                 output_for: Callable[[int], object] | None = None,
                 cwd=None):
        if n < 1:
            raise ValueError(f"a cluster needs at least 1 worker, got {n}")
        self.n = n
        self.hosts = [f"127.0.0.1:{p}" for p in free_ports(n)]
        self._argv_for = argv_for
        self._output_for = output_for
        self._cwd = cwd
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> "LocalCluster":
        for i in range(self.n):
            out = self._output_for(i) if self._output_for else None
            self.procs.append(subprocess.Popen(
                self._argv_for(i), env=worker_env(self.hosts, i),
                stdout=out, stderr=subprocess.STDOUT if out else None,
                cwd=self._cwd))
        return self

    def wait(self, timeout: float) -> list[int | None]:
        """Each worker's exit status; workers still running after
        ``timeout`` seconds (in all) are killed and report None."""
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                break
        running = [p.poll() is None for p in self.procs]
        self.kill()
        return [None if r else p.returncode
                for p, r in zip(self.procs, running)]

    def kill(self) -> None:
        """Stops every worker still running."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def __exit__(self, *exc) -> None:
        self.kill()
