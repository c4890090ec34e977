"""An adversary hook that makes chosen replicas misbehave.

**For robustness experiments and tests only; off by default.** Passed as
``adversary=`` to any entry point, it implements the aggregation's hook
(:mod:`tf_sparsesign.aggregation.adversary_hook`). The hostile replicas
(``replicas``, global replica ids) send, every step:

* ``"signflip"`` — every sign inverted (the authors' ``det`` attack; dense:
  ``-g``).
* ``"random"`` — random signs, new ones every step (the authors' ``sto``;
  dense: ``|g|`` with random signs).
* ``"topflip"`` — their own selection, with the signs of the ``fraction``
  of it with the largest magnitudes inverted (an attack that keeps most of
  a message honest, so that agreement-based reliability stays high, while
  the entries that move the model most are wrong).
* ``"collude"`` — one shared message: the top-K of the hostile replicas'
  mean error-accumulated gradient, every sign inverted; all hostile
  replicas vote together on the same coordinates.
* ``"lie"`` — "a little is enough" (Baruch et al., NeurIPS 2019) adapted to
  signs: the hostile replicas see every replica's error-accumulated
  gradient (omniscient), take the per-coordinate mean ``mu`` and standard
  deviation ``sigma``, and all send the top-K coordinates of ``|mu|`` with
  the signs of ``mu - z * sigma * sign(mu)``: a sign is inverted only where
  ``|mu| < z * sigma``, where honest workers disagree anyway. ``z`` defaults
  to the paper's ``z_max``: ``s = floor(M / 2 + 1) - F``,
  ``z = Phi^-1((M - s) / M)`` (0.32 for 2 of 8, 0.67 for 3 of 8).
* ``"stale"`` — the message they computed ``delay`` steps earlier (their own
  current one during the first ``delay`` steps).
* ``"alternate"`` — honest for ``period`` steps, then flipping every sign
  for ``period`` steps, and so on (an adversary that earns trust, then
  spends it).
* ``"garbage"`` — a malformed message (indices out of range, invalid
  packed bytes, or a scrambled Rice stream; dense: NaN), to exercise
  ``on_invalid="drop"``.

The dense baseline (``dense=True``) supports ``signflip``, ``random``,
``alternate`` and ``garbage``. ``collude`` and ``lie`` gather every
replica's dense gradient once more per step (an experiment-only cost).

Example:

>>> from tf_sparsesign.experiments import Adversary
>>> Adversary("signflip", replicas=(0, 3))
Adversary(mode='signflip', replicas=(0, 3), seed=0, fraction=0.25, \
period=50, delay=10, z=None)
>>> Adversary("lie", replicas=(0, 1)).z_for(8)
0.318...
"""

from __future__ import annotations

import dataclasses
import math
import statistics

# No TensorFlow here (the commands' argument parsing reads MODES); the
# hook itself is in .hostile, imported by bind().

MODES = ("signflip", "random", "topflip", "collude", "lie", "stale",
         "alternate", "garbage")
#: Modes the dense baseline supports.
DENSE_MODES = ("signflip", "random", "alternate", "garbage")


@dataclasses.dataclass(frozen=True)
class Adversary:
    """Which replicas misbehave and how (see the module docstring).

    Attributes:
      mode: one of :data:`MODES`.
      replicas: global replica ids (``replica_id_in_sync_group``).
      seed: seed of ``"random"``'s signs.
      fraction: share of its selection ``"topflip"`` inverts (largest
        magnitudes first), in (0, 1]. Default 0.25.
      period: steps per honest / flipping phase of ``"alternate"``.
        Default 50.
      delay: steps by which ``"stale"`` messages are late. Default 10.
      z: ``"lie"``'s shift in standard deviations; None (default) takes
        the paper's ``z_max`` for the number of replicas and hostile ones.
    """

    mode: str
    replicas: tuple = ()
    seed: int = 0
    fraction: float = 0.25
    period: int = 50
    delay: int = 10
    z: float | None = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"Adversary mode must be one of {MODES}, got "
                             f"{self.mode!r}")
        replicas = tuple(int(r) for r in self.replicas)
        if any(r < 0 for r in replicas):
            raise ValueError(f"Adversary replicas must be >= 0, got "
                             f"{self.replicas}")
        if len(set(replicas)) != len(replicas):
            raise ValueError(f"Adversary replicas must be distinct, got "
                             f"{self.replicas}")
        object.__setattr__(self, "replicas", tuple(sorted(replicas)))
        if not 0.0 < float(self.fraction) <= 1.0:
            raise ValueError(f"Adversary fraction must be in (0, 1], got "
                             f"{self.fraction}")
        for name in ("period", "delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"Adversary {name} must be a positive int,"
                                 f" got {value!r}")
        if self.z is not None and not math.isfinite(float(self.z)):
            raise ValueError(f"Adversary z must be finite, got {self.z}")

    @property
    def dense_modes(self) -> tuple:
        """The modes the dense baseline supports (:data:`DENSE_MODES`)."""
        return DENSE_MODES

    def z_for(self, num_replicas: int) -> float:
        """``"lie"``'s ``z`` with ``num_replicas`` workers: the given ``z``,
        or Baruch et al.'s ``z_max`` (0 when it would be negative)."""
        if self.z is not None:
            return float(self.z)
        n, f = int(num_replicas), len(self.replicas)
        s = math.floor(n / 2 + 1) - f
        p = (n - s) / n
        if p <= 0.5:
            return 0.0
        return statistics.NormalDist().inv_cdf(min(p, 1 - 1e-9))

    def bind(self, message_codes: int):
        """The hook the aggregation calls (the aggregation's ``bind``):
        creates the per-replica step counter (and the delay buffer of
        ``"stale"``, ``message_codes`` codes per step) in the current
        strategy scope."""
        from .hostile import HostileReplicas

        return HostileReplicas(self, message_codes)
