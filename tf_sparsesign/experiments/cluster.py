"""A local multi-worker cluster: free ports, ``TF_CONFIG``, worker processes.

Shared by the tests, the benchmarks and the multi-worker example: every
worker process gets the same cluster list (127.0.0.1 by default, or the
``hosts`` given, e.g. one network namespace each) and its own index.
Waiting is bounded and fails fast when a worker dies, and leftover
processes (with ``new_session``, their whole process groups) are killed on
the way out. With ``quiet=True`` only the chief (worker 0) prints to this
terminal (``log_chief``: not even it); the others write to log files,
whose ends are shown if they fail.

Example:

>>> hosts = [f"127.0.0.1:{p}" for p in free_ports(2)]
>>> tf_config(hosts, 1)["task"]
{'type': 'worker', 'index': 1}
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
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


def stop(proc: subprocess.Popen, group: bool = False) -> None:
    """Kills ``proc`` if it still runs (``group``: its whole process group,
    even after it exited) and reaps it."""
    if group:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    elif proc.poll() is None:
        proc.kill()
    proc.wait()


class WorkerFailed(RuntimeError):
    """A worker exited before the cluster got where it was waiting for."""


class LocalCluster:
    """``n`` worker processes, started on ``__enter__``.

    Args:
      n: number of workers.
      argv_for: the command line of worker ``index``.
      output_for: optional ``index -> file object`` for the worker's stdout
        and stderr (default: inherited, or the log files with ``quiet``).
      cwd: working directory of the workers.
      quiet: only the chief (worker 0) writes to this terminal; every other
        worker writes to ``log_dir/worker<i>.log`` (default False: all
        inherit the terminal, so each progress line shows ``n`` times).
      log_dir: where quiet workers' logs go (default: a new temporary
        folder, removed when every worker succeeded).
      hosts: the workers' ``address:port`` (default: free ports on
        127.0.0.1).
      prefix_for: optional ``index -> list`` put before the worker's
        command line (e.g. ``["ip", "netns", "exec", ns]``).
      env: extra environment variables of every worker.
      new_session: each worker in its own session (process group), killed
        as a group (children included).
      log_chief: with ``quiet``, the chief writes to ``worker0.log`` too.

    Example::

        with LocalCluster(2, lambda i: [sys.executable, "worker.py"],
                          quiet=True) as c:
            codes = c.wait(timeout=600)
            c.report_failures(codes)   # the quiet workers' log tails
    """

    def __init__(self, n: int, argv_for: Callable[[int], list],
                 output_for: Callable[[int], object] | None = None,
                 cwd=None, quiet: bool = False, log_dir=None,
                 hosts: Sequence[str] | None = None,
                 prefix_for: Callable[[int], list] | None = None,
                 env: dict | None = None, new_session: bool = False,
                 log_chief: bool = False):
        if n < 1:
            raise ValueError(f"a cluster needs at least 1 worker, got {n}")
        if quiet and output_for is not None:
            raise ValueError("give quiet=True or output_for, not both")
        if hosts is not None and len(hosts) != n:
            raise ValueError(f"{n} workers need {n} hosts, got {len(hosts)}:"
                             f" {list(hosts)}")
        if log_chief and not quiet:
            raise ValueError("log_chief=True needs quiet=True")
        self.n = n
        self.hosts = (list(hosts) if hosts is not None else
                      [f"127.0.0.1:{p}" for p in free_ports(n)])
        self._prefix_for = prefix_for
        self._env = dict(env or {})
        self._new_session = new_session
        self._log_chief = log_chief
        self._argv_for = argv_for
        self._output_for = output_for
        self._cwd = cwd
        self.quiet = quiet
        self._own_log_dir = quiet and log_dir is None
        self.log_dir = (Path(tempfile.mkdtemp(prefix="tf_sparsesign_workers_"))
                        if self._own_log_dir else
                        Path(log_dir) if log_dir is not None else None)
        self._logs: dict[int, object] = {}
        self.codes: list[int | None] | None = None
        self.procs: list[subprocess.Popen] = []

    def log_path(self, index: int) -> Path | None:
        """The log file of a quiet worker (None for the chief, or when not
        quiet)."""
        if not self.quiet or (index == 0 and not self._log_chief):
            return None
        return self.log_dir / f"worker{index}.log"

    def __enter__(self) -> "LocalCluster":
        if self.quiet:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for i in range(self.n):
            out = self._output_for(i) if self._output_for else None
            if self.log_path(i) is not None:
                out = self._logs[i] = open(self.log_path(i), "w")
            prefix = self._prefix_for(i) if self._prefix_for else []
            env = worker_env(self.hosts, i)
            env.update(self._env)
            self.procs.append(subprocess.Popen(
                [*prefix, *self._argv_for(i)], env=env,
                stdout=out, stderr=subprocess.STDOUT if out else None,
                cwd=self._cwd, start_new_session=self._new_session))
        return self

    def wait_until(self, done: Callable[[], bool], timeout: float,
                   what: str = "the condition",
                   finished: Callable[[int], bool] | None = None,
                   poll: float = 0.05) -> None:
        """Polls ``done()`` until it is true. Fails fast: raises
        :class:`WorkerFailed` (with the worker's log tail) as soon as a
        worker has exited unless ``finished(index)`` says it had done its
        part, and TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not done():
            for i, proc in enumerate(self.procs):
                code = proc.poll()
                if code is not None and not (finished and finished(i)):
                    raise WorkerFailed(
                        f"worker {i} exited ({code}) before {what}:\n"
                        f"{self.log_tail(i)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{timeout:g} s passed waiting for {what}")
            time.sleep(poll)

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
        self.codes = [None if r else p.returncode
                      for p, r in zip(self.procs, running)]
        return self.codes

    def log_tail(self, index: int, chars: int = 3000) -> str:
        """The end of a quiet worker's log ("" when it has none)."""
        path = self.log_path(index)
        if path is None or not path.exists():
            return ""
        return path.read_text(errors="replace")[-chars:]

    def report_failures(self, codes, file=None) -> None:
        """Prints the log tail of every quiet worker that failed or was
        stopped (``codes`` from :meth:`wait`) to ``file`` (stderr)."""
        file = sys.stderr if file is None else file
        for i, code in enumerate(codes):
            if code != 0 and self.log_path(i) is not None:
                status = "timed out" if code is None else f"exit {code}"
                print(f"--- worker {i} ({status}), end of "
                      f"{self.log_path(i)}:\n{self.log_tail(i)}", file=file)

    def kill(self) -> None:
        """Stops every worker still running (with ``new_session``, its
        whole process group, also what a finished worker left behind)."""
        for proc in self.procs:
            stop(proc, self._new_session)

    def __exit__(self, *exc) -> None:
        self.kill()
        for log in self._logs.values():
            log.close()
        if self._own_log_dir and self.codes and all(
                c == 0 for c in self.codes):
            shutil.rmtree(self.log_dir, ignore_errors=True)
