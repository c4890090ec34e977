"""The methods a sweep compares, and their default learning-rate grids.

``dense`` (``dense=True``: the Keras dense all-reduce), ``signsgd``
(signSGD-MV: ``density=1``, no error feedback), ``s3gd`` / ``s3gd-noef``
(S3GD-MV with / without error feedback), ``topk`` (top-K SGD with error
feedback sending values, ``method="topk_values"``), ``randomk``
(``method="random_k"``, no memory). Each method runs with an optimizer
(:mod:`.optimizers`; ``sgd`` unless a token says ``NAME@OPTIMIZER``, e.g.
``dense@adamw``): under a voting method it applies the vote.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from . import optimizers

METHOD_NAMES = ("dense", "signsgd", "s3gd", "s3gd-noef", "topk", "randomk")

#: Default learning-rate grids per method family (sign methods move every
#: chosen coordinate by exactly lr, so they need much smaller rates).
DEFAULT_LRS = {
    "dense": (0.03, 0.1, 0.3),
    "signsgd": (1e-4, 3e-4, 1e-3),
    "s3gd": (1e-3, 3e-3, 1e-2),
    "s3gd-noef": (1e-3, 3e-3, 1e-2),
    "topk": (0.3, 1.0, 3.0),
    "randomk": (1e-3, 3e-3, 1e-2),
}


@dataclasses.dataclass(frozen=True)
class Method:
    """One compared method; ``family`` is a key of :data:`DEFAULT_LRS`,
    ``optimizer`` one of :data:`.optimizers.OPTIMIZERS`.

    >>> Method("s3gd", 0.01).label, Method("s3gd", 0.01, "adamw").label
    ('S3GD-MV 1% EF', 'S3GD-MV 1% EF + AdamW')
    """

    family: str
    density: float = 1.0
    optimizer: str = "sgd"

    def __post_init__(self):
        if self.family not in METHOD_NAMES:
            raise ValueError(f"unknown method {self.family!r}; expected one "
                             f"of {METHOD_NAMES}")
        if not 0 < self.density <= 1:
            raise ValueError(f"density must be in (0, 1], got "
                             f"{self.density}")
        optimizers.check(self.optimizer)

    @property
    def name(self) -> str:
        return {"dense": "dense", "signsgd": "signsgd_mv", "s3gd": "s3gd_mv",
                "s3gd-noef": "s3gd_mv", "topk": "topk_values",
                "randomk": "random_k"}[self.family]

    @property
    def error_feedback(self) -> bool:
        return self.family in ("s3gd", "topk")

    def lr_grid(self) -> tuple:
        """The default learning-rate grid of this method and optimizer."""
        if self.optimizer == "sgd":
            return DEFAULT_LRS[self.family]
        return optimizers.default_lrs(self.optimizer)

    @property
    def label(self) -> str:
        opt = optimizers.LABELS[self.optimizer]
        if self.family == "dense":
            return f"dense {opt}"
        return self._label() + ("" if self.optimizer == "sgd" else
                                f" + {opt}")

    def _label(self) -> str:
        pct = f"{self.density * 100:g}%"
        return {"signsgd": "signSGD-MV",
                "s3gd": f"S3GD-MV {pct} EF",
                "s3gd-noef": f"S3GD-MV {pct} no EF",
                "topk": f"top-K values {pct} EF",
                "randomk": f"random-K {pct}"}[self.family]

    def strategy(self, devices, seed: int = 0, **settings):
        """A fresh :class:`~tf_sparsesign.SparseSignStrategy` for this
        method over ``devices`` (``seed``: random_k's coordinate choice
        follows the run's seed; ``settings``: more settings, e.g. an
        adversary)."""
        from .. import SparseSignStrategy

        if self.family == "dense":
            return SparseSignStrategy(dense=True, devices=devices,
                                      seed=int(seed), **settings)
        own = {"error_feedback": self.error_feedback,
               "method": {"topk": "topk_values",
                          "randomk": "random_k"}.get(self.family,
                                                     "sign_vote")}
        return SparseSignStrategy(self.density, devices=devices,
                                  seed=int(seed), **{**own, **settings})


def expand_methods(names: Sequence[str], densities: Sequence[float],
                   baseline_density: float = 0.01,
                   optimizer: str = "sgd") -> list[Method]:
    """The runs' methods: s3gd/s3gd-noef once per density, topk/randomk at
    ``baseline_density``; ``name:d1,d2`` gives a method its own densities,
    ``name@optimizer`` its optimizer (else ``optimizer``).

    >>> [m.label for m in expand_methods(["dense", "s3gd"], [0.01, 0.1])]
    ['dense SGD', 'S3GD-MV 1% EF', 'S3GD-MV 10% EF']
    >>> [m.label for m in expand_methods(["s3gd-noef:0.01"], [0.1])]
    ['S3GD-MV 1% no EF']
    >>> [m.label for m in expand_methods(["dense@lion", "s3gd@adamw:0.01"],
    ...                                   [0.1])]
    ['dense Lion', 'S3GD-MV 1% EF + AdamW']
    """
    out = []
    for token in names:
        head, _, own = token.partition(":")
        name, _, opt = head.partition("@")
        opt = opt or optimizer
        if own:  # "s3gd-noef:0.01" or "topk:0.01,0.1": densities of its own
            out += [Method(name, float(d), opt) for d in own.split(",")]
        elif name in ("s3gd", "s3gd-noef"):
            out += [Method(name, float(d), opt) for d in densities]
        elif name in ("topk", "randomk"):
            out.append(Method(name, float(baseline_density), opt))
        else:
            out.append(Method(name, optimizer=opt))
    return out
