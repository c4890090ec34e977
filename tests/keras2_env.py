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


def run_checks(group: str, timeout=900) -> subprocess.CompletedProcess:
    """``pytest tests/keras2/<group>`` under Keras 2."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"tests/keras2/{group}"], cwd=ROOT, env=keras2_env(),
        capture_output=True, text=True, timeout=timeout)
