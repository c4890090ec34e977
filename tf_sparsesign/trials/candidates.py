"""What a trial compares: candidates, each a name, the library settings it
trains with, and its learning rate (None: the user's for dense, a short
search for the sign methods)."""

from __future__ import annotations

import dataclasses

from .._text import parse_value

#: The default candidates: dense, S3GD-MV at 1% and 0.1% (the exchange and
#: wire ``"auto"``: the fastest that gives the same update).
DEFAULT = ("dense", "s3gd:0.01", "s3gd:0.001")


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One contender of a trial.

    Attributes:
      name: its label in the report (``"dense"``, ``"S3GD-MV 1%"``, ...).
      settings: keyword settings of
        :class:`~tf_sparsesign.SparseSignOptimizer` (``dense=True`` for the
        baseline).
      lr: the learning rate to train with; None: the user's optimizer's
        for dense, found by the trial's short search for the others.
    """

    name: str
    settings: dict
    lr: float | None = None

    @property
    def dense(self) -> bool:
        """The dense baseline (the reference the others are judged by)."""
        return bool(self.settings.get("dense", False))


def parse(token: str, lr: float | None = None) -> Candidate:
    """A candidate from a short token: ``dense``, ``s3gd:DENSITY``,
    ``signsgd`` (density 1, no error feedback), ``dlion`` (Distributed Lion:
    worker momentum at density 1), ``s3gd-lion:DENSITY`` (worker momentum
    at DENSITY); ``key=value`` pairs after a ``;`` add settings
    (``s3gd:0.01;wire=rice``).

    >>> parse("s3gd:0.01").name
    'S3GD-MV 1%'
    >>> parse("s3gd-lion:0.001;wire=rice").settings["wire"]
    'rice'
    """
    head, _, extra = str(token).partition(";")
    kind, _, arg = head.partition(":")
    settings: dict
    if kind == "dense":
        name, settings = "dense", {"dense": True}
    elif kind == "signsgd":
        name, settings = "signSGD-MV", {"density": 1.0,
                                        "error_feedback": False}
    elif kind == "dlion":
        name, settings = "Distributed Lion", {
            "density": 1.0, "error_feedback": False,
            "worker_momentum": "lion"}
    elif kind in ("s3gd", "s3gd-lion"):
        try:
            density = float(arg)
        except ValueError:
            raise ValueError(f"candidate {token!r}: {kind} needs a density, "
                             f"e.g. {kind}:0.01") from None
        name = f"S3GD-MV {density * 100:g}%" + (
            " + worker Lion" if kind == "s3gd-lion" else "")
        settings = {"density": density}
        if kind == "s3gd-lion":
            settings["worker_momentum"] = "lion"
    else:
        raise ValueError(f"unknown candidate {token!r}; expected dense, "
                         "s3gd:DENSITY, s3gd-lion:DENSITY, signsgd or dlion")
    for pair in filter(None, (p.strip() for p in extra.split(";"))):
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"candidate {token!r}: settings are key=value, "
                             f"got {pair!r}")
        settings[key.strip()] = parse_value(value.strip())
        name += f" {key.strip()}={value.strip()}"
    if not settings.get("dense"):
        settings.setdefault("aggregation", "auto")
        settings.setdefault("wire", "auto")
    return Candidate(name, settings, lr)
