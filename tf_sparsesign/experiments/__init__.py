"""Experiment tooling around the library (the library never imports it).

* :mod:`.cli` — the ``plan``, ``sweep`` and ``report`` commands
* :mod:`.planning` — bytes and time per step before training (no TF)
* :mod:`.methods`, :mod:`.runs`, :mod:`.sweep` — training runs and sweeps
* :mod:`.datasets` — offline data sets, IID and non-IID worker splits
* :mod:`.reporting` — tables, plots and report.md from a sweep's CSV
* :mod:`.adversary` — :class:`Adversary`, misbehaving replicas
* :mod:`.cluster` — local multi-worker clusters (ports, ``TF_CONFIG``)

``Adversary`` is imported on first use, so the TensorFlow-free commands
(``plan``) stay light.
"""

__all__ = ["Adversary"]


def __getattr__(name):
    if name == "Adversary":
        from .adversary import Adversary

        return Adversary
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
