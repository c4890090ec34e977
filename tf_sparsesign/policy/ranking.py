"""``auto``'s question: among options that give the same update, which is
fastest, and is the model sure? (no TensorFlow here)

:func:`rank` orders candidate exchanges (all-gather or sharded with the
exact downlink; int32, Rice or packed) by :func:`.timing.predict` and
says, with the model's error band, which of them cannot be told apart
(:attr:`Ranking.contenders`): those are the ones the first training steps
should time in alternation.

Example:

>>> from tf_sparsesign.policy.timing import Link, Workload
>>> slow = Link(bandwidth=10e6)   # 10 Mbit/s: Rice's 3.4x fewer bytes
>>> r = rank(["allgather/int32", "allgather/rice"],
...          Workload(10_000_000, 100_000, 4, forward_backward=0.1),
...          link=slow)
>>> r.best.option.name, r.tied
('allgather/rice', False)
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from .profile import Profile
from .timing import Link, Option, Prediction, Workload, predict

#: The model's relative error band (one prediction's error, the goal the
#: validation in docs/NETWORK.md checks: median 15%).
MODEL_ERROR = 0.15
#: Exchanges (and their downlink) that give the same update as one another.
SAME_UPDATE = {("allgather", "exact"), ("sharded", "exact")}


@dataclasses.dataclass(frozen=True)
class Ranking:
    """Candidates ordered by predicted step time, fastest first.

    Attributes:
      predictions: one :class:`~.timing.Prediction` per candidate.
      error: the relative error of one prediction (``t`` means ``t (1 +/-
        error)``).
    """

    predictions: tuple
    error: float

    @property
    def best(self) -> Prediction:
        """The fastest by the model."""
        return self.predictions[0]

    @property
    def contenders(self) -> tuple:
        """The candidates the model cannot tell from the best: those whose
        time band ``t (1 - error)`` reaches the best's ``t (1 + error)``
        (always at least the best)."""
        top = self.best.seconds * (1.0 + self.error)
        return tuple(p for p in self.predictions
                     if p.seconds * (1.0 - self.error) <= top)

    @property
    def tied(self) -> bool:
        """True when the best two are within the model's error (time them
        in alternation)."""
        return len(self.contenders) > 1


def rank(candidates: Sequence, workload: Workload,
         profile: Profile | None = None, error: float = MODEL_ERROR,
         link: Link | None = None) -> Ranking:
    """The :class:`Ranking` of ``candidates`` (option names such as
    ``"allgather/rice"`` or :class:`~.timing.Option`) for ``workload``,
    with ``profile`` (None: documented defaults, see
    :func:`~.timing.predict`). Only options that give the same update are
    accepted: all-gather or sharded with the exact downlink, any codec;
    ValueError for dense or the top-K downlink (another algorithm).
    Equal predictions keep the candidates' order."""
    options = [c if isinstance(c, Option) else Option.parse(c)
               for c in candidates]
    if not options:
        raise ValueError("rank needs at least one candidate option")
    other = [o.name for o in options
             if (o.exchange, o.downlink) not in SAME_UPDATE]
    if other:
        raise ValueError(f"rank compares options that give the same update"
                         f" (all-gather or sharded with the exact downlink)"
                         f"; got {other}, another algorithm")
    if not 0.0 <= error < 1.0:
        raise ValueError(f"error must be in [0, 1), got {error}")
    predictions = predict(workload, options, profile, link)
    order = sorted(range(len(options)),
                   key=lambda i: (predictions[i].seconds, i))
    return Ranking(tuple(predictions[i] for i in order), float(error))
