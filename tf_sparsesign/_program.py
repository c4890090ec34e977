"""Is this process the ``tf-sparsesign`` program running a command that
needs no TensorFlow? (Standard library only: read before anything else.)

``tf-sparsesign plan`` is arithmetic (:mod:`tf_sparsesign.policy`), but
every import of a submodule first runs ``tf_sparsesign/__init__.py``, which
imports the Keras integration (TensorFlow: seconds, and its log lines).
That import must stay eager for library users: importing ``tf_sparsesign``
registers :class:`~tf_sparsesign.SparseSignOptimizer` with Keras, which is
what lets ``import tf_sparsesign; keras.models.load_model("m.keras")``
load a file holding the wrapper (a lazy PEP 562 ``__getattr__`` would break
that). So the package's ``__init__`` asks :func:`light_command` once: only
in the program's own process, started as ``tf-sparsesign plan ...`` or
``python [options] -m tf_sparsesign plan ...``, does it skip the
TensorFlow-backed names. Any other process (a user's script, a notebook,
pytest, a worker) imports the full package exactly as before.
"""

from __future__ import annotations

import os
import sys

#: Subcommands that need no TensorFlow.
LIGHT_COMMANDS = ("plan",)
#: The console script's name (``[project.scripts]`` in pyproject.toml).
PROGRAM = "tf-sparsesign"
PACKAGE = "tf_sparsesign"
#: Interpreter options that take a separate argument (``-X importtime``).
_OPTIONS_WITH_ARGUMENT = ("-X", "-W", "-Q")


def _module_run_by(orig_argv) -> tuple[str | None, list]:
    """``(module, its arguments)`` when the interpreter was started with
    ``-m module``, else ``(None, [])``."""
    args = list(orig_argv)[1:]
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-m":
            return (args[i + 1], args[i + 2:]) if i + 1 < len(args) else (
                None, [])
        if a.startswith("-m") and not a.startswith("--"):
            return a[2:], args[i + 1:]
        if a in _OPTIONS_WITH_ARGUMENT:
            i += 2
            continue
        if a == "-c" or a == "-" or not a.startswith("-"):
            return None, []  # -c code, stdin or a script: not the program
        i += 1
    return None, []


def light_command(argv=None, orig_argv=None) -> bool:
    """True when this process is ``tf-sparsesign <cmd>`` or ``python -m
    tf_sparsesign <cmd>`` with ``<cmd>`` in :data:`LIGHT_COMMANDS`.

    Args:
      argv: ``sys.argv`` (default: this process's).
      orig_argv: the interpreter's own command line, ``sys.orig_argv``
        (default: this process's).

    >>> light_command(["/venv/bin/tf-sparsesign", "plan", "--workers", "8"],
    ...               ["python", "/venv/bin/tf-sparsesign", "plan"])
    True
    >>> light_command(["-m"], ["python", "-m", "tf_sparsesign", "plan"])
    True
    >>> light_command(["train.py", "plan"], ["python", "train.py", "plan"])
    False
    """
    argv = list(sys.argv if argv is None else argv)
    orig = list(getattr(sys, "orig_argv", []) if orig_argv is None
                else orig_argv)
    module, args = _module_run_by(orig)
    if module is not None:
        return (module in (PACKAGE, f"{PACKAGE}.__main__") and
                bool(args) and args[0] in LIGHT_COMMANDS)
    name = os.path.basename(argv[0]) if argv else ""
    if name.lower().endswith((".exe", "-script.py")):
        name = name.rsplit(".exe", 1)[0].rsplit("-script.py", 1)[0]
    return (name == PROGRAM and len(argv) > 1 and
            argv[1] in LIGHT_COMMANDS)
