"""Runs Keras 2 (tf_keras) checks in subprocesses with TF_USE_LEGACY_KERAS=1.

The flag must be set before TensorFlow is imported, so the Keras 2 checks
(``tests/keras2/check_*.py``, not collected by the normal run) run in their
own ``pytest`` process, one per group, with the flag set.

tf-keras 2.21.0 requires the ``tensorflow`` distribution (the full package,
with CUDA kernels), which the ``cpu`` extra's ``tensorflow-cpu`` does not
satisfy by name, so it is not in the ``test`` extra (pip would install a
second TensorFlow over the first). If tf_keras is not importable here, it
is installed once, without dependencies, into a cache folder that only
these subprocesses put on their path (the same thing a ``tensorflow-cpu``
user does with ``pip install --no-deps tf-keras==2.21.0``).
"""

import fcntl
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TF_KERAS = "tf-keras==2.21.0"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / \
    "tf_sparsesign" / "tf_keras-2.21.0"


def tf_keras_path() -> str | None:
    """A folder to put on PYTHONPATH for tf_keras (None: already
    importable). Installs it there on first use; fails loudly if it cannot."""
    if importlib.util.find_spec("tf_keras") is not None:
        return None
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with open(CACHE.parent / "tf_keras.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (CACHE / "tf_keras" / "__init__.py").exists():
            done = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--no-deps",
                 "--disable-pip-version-check", "--target", str(CACHE),
                 TF_KERAS], capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(f"could not install {TF_KERAS} into "
                                   f"{CACHE}:\n{done.stderr[-3000:]}")
    return str(CACHE)


def keras2_env(extra=None) -> dict:
    """This process's environment with TF_USE_LEGACY_KERAS=1 and tf_keras
    importable."""
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    path = tf_keras_path()
    if path:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (path, env.get("PYTHONPATH")) if p)
    env.update(extra or {})
    return env


#: Bound on one group's run. The slowest group (check_saving) took 6.5
#: minutes on the 2-core development machine at a load average of 7-8 (4x
#: its cores), 23 minutes when it also ran at nice 5 beside two busy loops
#: at nice 0 (load 9); an hour still ends a hang.
GROUP_TIMEOUT = 3600
#: A check running longer than this prints every thread's stack (a hang
#: shows where it waits) and goes on; no check takes a minute alone.
STACKS_AFTER = 600


def run_checks(group: str,
               timeout=GROUP_TIMEOUT) -> subprocess.CompletedProcess:
    """``pytest tests/keras2/<group>`` under Keras 2. At the timeout the
    group is stopped and returned as failed (returncode None) with the
    output it had written, so the report says where it was."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           "--tb=short", "-rfE", "-o", f"faulthandler_timeout={STACKS_AFTER}",
           f"tests/keras2/{group}"]
    try:
        return subprocess.run(cmd, cwd=ROOT, env=keras2_env(),
                              capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(
            cmd, None, _text(exc.stdout),
            _text(exc.stderr) + f"\n[stopped after {timeout} s]")


def _text(out) -> str:
    """What a timed-out run had written (bytes, str or None) as text."""
    if isinstance(out, bytes):
        return out.decode(errors="replace")
    return out or ""


def report(done: subprocess.CompletedProcess) -> str:
    """A failed group's exit status (None: stopped at the timeout;
    negative: killed by that signal), the end of pytest's report (-rfE
    lists every failure with its error) and the end of stderr."""
    return (f"exit status {done.returncode}\n--- pytest output (end) ---\n"
            f"{done.stdout[-6000:]}\n--- stderr (end) ---\n"
            f"{done.stderr[-3000:]}")
