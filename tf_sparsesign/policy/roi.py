"""What a run costs with each option, and the link speed where S3GD-MV stops
paying off (no TensorFlow here).

:func:`estimate` turns the time model's step time (:func:`.timing.predict`)
into a run's wall time and money: every worker is paid for the whole step
(``price_per_worker_hour``), split into forward+backward, compression (the
library's compute) and communication (the collectives), plus what every
worker sends (``egress_price_per_gb``, the byte models of
:mod:`.exchange` and :func:`.bits.dense_ring_bytes`).
:func:`break_even_bandwidth` is the link speed below which an option's step
is shorter than dense's.

Example (the documented defaults: no profile):

>>> from tf_sparsesign.policy.timing import Workload
>>> work = Workload(11_600_000, 116_000, 4, forward_backward=0.1)
>>> slow = Link(bandwidth=100e6)
>>> dense, rice = estimate(["dense", "allgather/rice"], work, 1000,
...                        Prices(2.0, 0.09), link=slow)
>>> rice.seconds < dense.seconds
True
>>> b = break_even_bandwidth("allgather/rice", work)
>>> 1e9 < b < 1e12
True
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

from .bits import dense_ring_bytes
from .exchange import exchange_bytes
from .profile import Profile
from .timing import DENSE, Link, Option, Workload, predict

#: The link speeds :func:`break_even_bandwidth` searches (bits per second).
BANDWIDTH_RANGE = (1e5, 1e12)


@dataclasses.dataclass(frozen=True)
class Prices:
    """What the user pays: per worker-hour of the machines, and per GB a
    worker sends (cloud egress; 0 inside one zone)."""

    worker_hour: float = 0.0
    egress_per_gb: float = 0.0

    def __post_init__(self):
        for name in ("worker_hour", "egress_per_gb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(
                    value, (int, float)) or not math.isfinite(value) or \
                    value < 0:
                raise ValueError(f"price {name} must be a finite number >= "
                                 f"0, got {value!r}")


@dataclasses.dataclass(frozen=True)
class RunEstimate:
    """One option over a run of ``steps`` steps: ``step_seconds`` and
    ``seconds`` (wall time), ``bytes_per_step`` (one worker's sent bytes),
    and the cost split into ``compute`` (forward+backward),
    ``compression``, ``communication`` and ``egress`` (``cost`` the sum).
    """

    option: str
    steps: int
    step_seconds: float
    seconds: float
    bytes_per_step: float
    compute: float
    compression: float
    communication: float
    egress: float

    @property
    def cost(self) -> float:
        """The run's cost in all."""
        return self.compute + self.compression + self.communication + \
            self.egress


def sent_bytes(option, workload: Workload) -> float:
    """Bytes one worker sends per step with ``option`` (name or
    :class:`~.timing.Option`)."""
    option = _option(option)
    n, k, m = (workload.num_elements, workload.total_k,
               workload.num_replicas)
    if option == DENSE:
        return float(dense_ring_bytes(n, m))
    return float(exchange_bytes(n, k, m, option.wire, option.exchange,
                                option.downlink)["sent"])


def estimate(options: Sequence, workload: Workload, steps: int,
             prices: Prices = Prices(), profile: Profile | None = None,
             link: Link | None = None) -> list:
    """A :class:`RunEstimate` per option for ``steps`` steps (the time
    model with ``profile`` and/or ``link``, see :func:`.timing.predict`).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a whole number >= 1, got {steps!r}")
    out = []
    for p in predict(workload, options, profile, link):
        fb = p.parts["forward_backward"]
        compression = p.seconds - fb - p.comm
        per_second = prices.worker_hour * workload.num_replicas / 3600.0
        nbytes = sent_bytes(p.option, workload)
        out.append(RunEstimate(
            p.option.name, steps, p.seconds, p.seconds * steps, nbytes,
            compute=per_second * fb * steps,
            compression=per_second * compression * steps,
            communication=per_second * p.comm * steps,
            egress=prices.egress_per_gb * workload.num_replicas * nbytes *
            steps / 1e9))
    return out


def step_seconds_at(option, workload: Workload, bandwidth: float,
                    profile: Profile | None = None,
                    latency: float | None = None) -> float:
    """Predicted step time of ``option`` on a link of ``bandwidth`` bits
    per second (``latency`` per message: the default :class:`Link`'s)."""
    link = Link(bandwidth) if latency is None else Link(bandwidth, latency)
    return predict(workload, [option], profile, link)[0].seconds


def break_even_bandwidth(option, workload: Workload,
                         profile: Profile | None = None,
                         latency: float | None = None) -> float:
    """The link speed (bits per second) below which ``option``'s step is
    shorter than dense's, found by bisection in :data:`BANDWIDTH_RANGE`:
    ``math.inf`` when it is shorter at every speed there, ``0.0`` when at
    none."""
    def gain(b):  # > 0: the option is faster at b
        return (step_seconds_at(DENSE, workload, b, profile, latency)
                - step_seconds_at(option, workload, b, profile, latency))

    lo, hi = BANDWIDTH_RANGE
    if gain(hi) > 0:
        return math.inf
    if gain(lo) <= 0:
        return 0.0
    for _ in range(60):  # on a log scale: 2**-60 of 7 decades
        mid = math.sqrt(lo * hi)
        if gain(mid) > 0:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


def _option(option) -> Option:
    return option if isinstance(option, Option) else Option.parse(option)
