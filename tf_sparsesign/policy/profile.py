"""A cluster's measured costs: the calibration profile (no TensorFlow here).

:func:`tf_sparsesign.calibrate` times, inside the real job, each collective
the exchanges use at a few message sizes and the compute parts of a step
at the model's sizes, and writes one :class:`Profile` (JSON). The time
model (:mod:`.timing`) reads it; ``tf-sparsesign plan --profile`` prints
what it predicts.

Collectives are fitted per kind for the profile's M as ``t(x) = max(floor,
a + x / b)`` (:class:`Fit`, the form HiPress/SeCoPa use), ``x`` the bytes
one worker puts into the collective (its message, its M buckets, its
tensor). Compute parts are fitted as ``t(w) = c0 + c1 * w`` (:class:`Part`)
in the part's work units (:func:`.timing.work_units`: elements, entries,
M times entries), from the real sizes and a tiny copy of the same tensors.

Example:

>>> fit = fit_collective([(1000, 0.0012), (100_000, 0.0021),
...                       (1_000_000, 0.0102)])
>>> round(fit.seconds(500_000), 4), round(fit.seconds(10), 4)
(0.0057, 0.0012)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Sequence

#: Version of the JSON layout.
FORMAT = 1
#: The collective kinds a profile fits (what the exchanges launch).
KINDS = ("all_gather", "all_to_all", "all_reduce")


class ProfileMismatch(ValueError):
    """A profile taken on another cluster shape or TensorFlow version."""


@dataclasses.dataclass(frozen=True)
class Fit:
    """One collective kind: ``t(x) = max(floor, a + x / b)`` seconds for
    ``x`` bytes per worker (``b`` in bytes per second)."""

    floor: float
    a: float
    b: float

    def seconds(self, nbytes: float) -> float:
        """Predicted seconds for ``nbytes`` bytes per worker."""
        return max(self.floor, self.a + float(nbytes) / self.b)


@dataclasses.dataclass(frozen=True)
class Part:
    """One compute part: ``t(w) = c0 + c1 * w`` seconds for ``w`` work
    units (see :func:`tf_sparsesign.policy.timing.work_units`)."""

    c0: float
    c1: float

    def seconds(self, work: float) -> float:
        """Predicted seconds for ``work`` units."""
        return self.c0 + self.c1 * float(work)


def fit_collective(points: Sequence) -> Fit:
    """:class:`Fit` of ``[(bytes, seconds), ...]`` (at least two sizes):
    ``a`` and ``1/b`` by least squares of the *relative* error (every size
    counts alike), both kept >= 0; ``floor`` the time at the smallest
    size."""
    pts = sorted((float(x), float(t)) for x, t in points)
    if len({x for x, _ in pts}) < 2 or min(t for _, t in pts) <= 0:
        raise ValueError(f"fit_collective needs positive times at >= 2 "
                         f"sizes, got {points!r}")
    w = [1.0 / (t * t) for _, t in pts]
    sw = sum(w)
    sx = sum(wi * x for wi, (x, _) in zip(w, pts))
    sxx = sum(wi * x * x for wi, (x, _) in zip(w, pts))
    st = sum(wi * t for wi, (_, t) in zip(w, pts))
    sxt = sum(wi * x * t for wi, (x, t) in zip(w, pts))
    det = sw * sxx - sx * sx
    slope = (sw * sxt - sx * st) / det if det > 0 else 0.0
    if slope <= 0:  # no size dependence measurable: a flat line
        slope = 1e-15
    a = max(0.0, (st - slope * sx) / sw)
    floor = min(t for x, t in pts if x == pts[0][0])
    return Fit(floor=floor, a=a, b=1.0 / slope)


def fit_part(*points) -> Part:
    """:class:`Part` through ``(work, seconds)`` points: through both of a
    small and a large size (a slope that the noise made negative becomes
    0: the large time, flat), or, from one point, in proportion to the
    work (``c0 = 0``)."""
    pts = sorted(tuple(map(float, p)) for p in points)
    if len(pts) == 1:
        (w, t), = pts
        return Part(c0=0.0, c1=t / w) if w > 0 else Part(c0=t, c1=0.0)
    if len(pts) != 2:
        raise ValueError(f"fit_part takes 1 or 2 (work, seconds) points, "
                         f"got {points!r}")
    (w0, t0), (w1, t1) = pts
    if w1 <= w0:
        return Part(c0=max(t0, t1), c1=0.0)
    c1 = max(0.0, (t1 - t0) / (w1 - w0))
    return Part(c0=max(0.0, t1 - c1 * w1), c1=c1)


@dataclasses.dataclass(frozen=True)
class Profile:
    """What :func:`tf_sparsesign.calibrate` measured on one cluster.

    Attributes:
      num_replicas: M, replicas in sync when it was taken.
      hosts: the workers' addresses (one entry on a single host).
      devices: the device type and count of every replica's device.
      tf_version: the TensorFlow version that ran it.
      taken: when (ISO 8601, UTC, the chief's clock).
      collectives: :class:`Fit` per kind of :data:`KINDS`.
      compute: :class:`Part` per compute part (keys of
        :func:`tf_sparsesign.policy.timing.work_units`).
      forward_backward: seconds of the model's forward+backward at the
        batch given (None: no model was given).
      sizes: the trainable tensors' element counts the parts were timed at.
      total_k: the entries per step (K) they were timed at.
      seconds: how long the calibration took (the slowest worker).
      stages: its seconds per stage (collectives, compute, ...).
      points: the raw collective measurements, ``{kind: [[bytes, s]]}``.
      sharing: how the replicas shared this host's cores (free text).
    """

    num_replicas: int
    hosts: tuple
    devices: tuple
    tf_version: str
    taken: str
    collectives: dict
    compute: dict
    forward_backward: float | None = None
    sizes: tuple = ()
    total_k: int = 0
    seconds: float = 0.0
    stages: dict = dataclasses.field(default_factory=dict)
    points: dict = dataclasses.field(default_factory=dict)
    sharing: str = ""

    def check(self, num_replicas: int | None = None,
              tf_version: str | None = None) -> None:
        """Raises :class:`ProfileMismatch` when this profile was taken with
        another number of replicas or another TensorFlow version (its
        collective times do not carry over)."""
        if num_replicas is not None and int(num_replicas) != \
                self.num_replicas:
            raise ProfileMismatch(
                f"this profile was taken with M = {self.num_replicas} "
                f"replicas (on {self.taken}), the job has M = "
                f"{int(num_replicas)}: collective times depend on M; run "
                "`tf-sparsesign calibrate` in this job")
        if tf_version is not None and tf_version != self.tf_version:
            raise ProfileMismatch(
                f"this profile was taken with TensorFlow {self.tf_version}"
                f", this process runs {tf_version}: calibrate again")

    def to_json(self) -> str:
        """The profile as JSON text (stable key order)."""
        data = dataclasses.asdict(self)
        data["format"] = FORMAT
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Profile":
        """A profile from :meth:`to_json`'s text; ValueError naming what is
        missing or malformed."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"a profile is JSON; could not read it: {exc}")
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a tf_sparsesign profile of format "
                             f"{FORMAT}: got format "
                             f"{data.get('format') if isinstance(data, dict) else type(data).__name__!r}")
        data.pop("format")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = {f.name for f in dataclasses.fields(cls)
                   if f.default is dataclasses.MISSING and
                   f.default_factory is dataclasses.MISSING} - set(data)
        if missing or set(data) - names:
            raise ValueError(f"profile fields: missing {sorted(missing)}, "
                             f"unknown {sorted(set(data) - names)}")
        data["collectives"] = {k: Fit(**v) for k, v in
                               data["collectives"].items()}
        data["compute"] = {k: Part(**v) for k, v in data["compute"].items()}
        for name in ("hosts", "devices", "sizes"):
            data[name] = tuple(data.get(name, ()))
        profile = cls(**data)
        profile.validate()
        return profile

    def validate(self) -> None:
        """ValueError unless every number is finite and non-negative and
        every collective kind is fitted."""
        if self.num_replicas < 1:
            raise ValueError(f"num_replicas must be >= 1, got "
                             f"{self.num_replicas}")
        missing = set(KINDS) - set(self.collectives)
        if missing:
            raise ValueError(f"profile lacks the collective fits "
                             f"{sorted(missing)}")
        numbers = [v for f in self.collectives.values() for v in
                   (f.floor, f.a, f.b)]
        numbers += [v for p in self.compute.values() for v in (p.c0, p.c1)]
        if any(not math.isfinite(v) or v < 0 for v in numbers) or any(
                f.b <= 0 for f in self.collectives.values()):
            raise ValueError("profile holds a negative, zero-bandwidth or "
                             "non-finite fitted number")

    def save(self, path) -> None:
        """Writes :meth:`to_json` to ``path`` atomically (a temporary file
        renamed: several workers may write the same profile)."""
        path = os.fspath(path)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(self.to_json())
        os.replace(tmp, path)


def load_profile(path) -> Profile:
    """The :class:`Profile` saved at ``path``."""
    with open(os.fspath(path)) as f:
        return Profile.from_json(f.read())
