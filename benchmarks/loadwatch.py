"""Is the machine quiet? Timing runs on a shared machine must know whether
another process took CPU while they ran.

:class:`LoadWatch` samples every process's CPU time from ``/proc`` once a
second in a background thread and remembers the processes outside this
process's own tree (the driver, its workers and their children) that used
more than ``threshold`` of one core over a second. ``quiet(cmd)`` runs a
wait-until-quiet command (e.g. ``/work/briefs/quiet.sh 600``) first.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
import time

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: str):
    """``(ppid, cpu seconds, name)`` of ``pid``, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    name = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS, name


def snapshot() -> dict:
    """``{pid: (ppid, cpu seconds, name)}`` of every process."""
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            st = _stat(pid)
            if st is not None:
                out[int(pid)] = st
    return out


def own_tree(procs: dict, root: int) -> set:
    """``root`` and all its descendants."""
    mine, grew = {root}, True
    while grew:
        grew = False
        for pid, (ppid, _, _) in procs.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                grew = True
    return mine


class LoadWatch:
    """Foreign processes above ``threshold`` (fraction of a core) while
    watching: ``with LoadWatch() as w: ...; w.busy`` lists
    ``"name (pid) 87%"``."""

    def __init__(self, threshold: float = 0.15, interval: float = 1.0):
        self.threshold, self.interval = threshold, interval
        self.busy: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        before, t0 = snapshot(), time.monotonic()
        while not self._stop.wait(self.interval):
            now, t1 = snapshot(), time.monotonic()
            mine = own_tree(now, os.getpid())
            for pid, (_, cpu, name) in now.items():
                if pid in mine or pid not in before:
                    continue
                share = (cpu - before[pid][1]) / max(t1 - t0, 1e-3)
                if share > self.threshold:
                    self.busy.append(f"{name} ({pid}) {share:.0%}")
            before, t0 = now, t1

    def __enter__(self) -> "LoadWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def quiet(command: str | None) -> bool:
    """Runs the wait-until-quiet ``command`` (None: nothing); True when it
    says the machine is quiet (exit 0)."""
    if not command:
        return True
    return subprocess.run(shlex.split(command)).returncode == 0
