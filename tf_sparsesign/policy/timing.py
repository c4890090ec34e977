"""The time model: predicted seconds per step of every exchange option (no
TensorFlow here; ``plan``, ``aggregation="auto"`` and the benchmarks all
call :func:`predict`).

A step of an option is, in sequence (nothing overlaps on CPU)::

    forward+backward                         profile (model given) / stated
  + the compression's compute                check_finite, encode, message,
                                             host step (decode + vote),
                                             apply: compute Parts
  + the exchange's collectives               one Fit per collective kind

* **Bytes** come from the byte model of each exchange
  (:func:`.exchange.allgather_message_words`,
  :func:`.exchange.sharded_message_words`: what
  :data:`.exchange.BYTE_MODELS` and the exchanges' counters use).
* **Collectives per step** (:func:`collectives_of`): dense, one fp32 SUM
  all-reduce of every gradient concatenated (TF packs a tf.function's
  gradients into one tensor); all-gather, **one** ``CollectiveGatherV2``
  (the library launches static shapes; ``ReplicaContext.all_gather`` with
  unknown shapes is two collectives, a shape round first:
  ``static_shapes=False``); sharded, one all-to-all of the M buckets, then
  the shard votes' all-gather (the exact Rice downlink first gathers the
  messages' lengths: one tiny all-gather more), plus one small all-reduce
  for a vote rule that learns.
* **Collective times**: from the profile's :class:`~.profile.Fit` of the
  kind for its M (:mod:`.profile`); without one, from a :class:`Link`
  (a bandwidth and a per-message latency: the ring all-gather sends M-1
  messages in M-1 rounds, the ring all-reduce 2(M-1)/M of the tensor in
  2(M-1) rounds, its tensor cut into chunks of at most 4 MiB, each chunk a
  separate call; the CPU all-to-all opens its M-1 requests at once, one
  round, the M-1 buckets sharing the link).
* **Compute**: each part ``c0 + c1 * work`` (:func:`work_units`), so a
  profile taken at one density and M scales to others; without a profile
  :data:`DEFAULT_COMPUTE` (measured on the development machine, see
  docs/NETWORK.md) — :attr:`Prediction.notes` says so.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

from .exchange import (allgather_message_words, downlink_format,
                       sharded_message_words)
from .profile import Fit, Part, Profile
from .timing_defaults import (CHUNK_BYTES, DEFAULT_BANDWIDTH,
                              DEFAULT_COMPUTE, DEFAULT_LATENCY)


@dataclasses.dataclass(frozen=True)
class Option:
    """One way to run a step: ``exchange`` ``"dense"``, ``"allgather"`` or
    ``"sharded"``; ``wire`` ``"fp32"`` (dense), ``"int32"``, ``"rice"`` or
    ``"packed"``; ``downlink`` of the sharded exchange."""

    exchange: str
    wire: str
    downlink: str = "exact"

    @property
    def name(self) -> str:
        """``"dense"``, ``"allgather/rice"``, ``"sharded/rice"``,
        ``"sharded-topk/rice"``."""
        if self.exchange == "dense":
            return "dense"
        top = "-topk" if self.downlink == "topk" else ""
        return f"{self.exchange}{top}/{self.wire}"

    @classmethod
    def parse(cls, name: str) -> "Option":
        """The option of :attr:`name` (``"allgather/int32"``, ...)."""
        if name == "dense":
            return DENSE
        exchange, _, wire = str(name).partition("/")
        exchange, _, top = exchange.partition("-")
        option = cls(exchange, wire, "topk" if top == "topk" else "exact")
        if option not in OPTIONS:
            raise ValueError(f"unknown option {name!r}; expected one of "
                             f"{[o.name for o in OPTIONS]}")
        return option


DENSE = Option("dense", "fp32")
#: Every option the model knows.
OPTIONS = (DENSE, Option("allgather", "int32"), Option("allgather", "rice"),
           Option("allgather", "packed"), Option("sharded", "int32"),
           Option("sharded", "rice"), Option("sharded", "int32", "topk"),
           Option("sharded", "rice", "topk"))


@dataclasses.dataclass(frozen=True)
class Workload:
    """A step's sizes: ``num_elements`` N (all trainable tensors),
    ``total_k`` K (entries sent per replica), ``num_replicas`` M;
    ``forward_backward`` seconds when known (else the profile's, else 0);
    ``learning_vote`` for a vote rule that learns (the sharded exchange
    then sums its observations: one small all-reduce more)."""

    num_elements: int
    total_k: int
    num_replicas: int
    forward_backward: float | None = None
    learning_vote: bool = False


@dataclasses.dataclass(frozen=True)
class Link:
    """Collective times from a link: ``bandwidth`` bits per second per
    worker and direction, ``latency`` seconds per message (one gRPC call,
    software included)."""

    bandwidth: float = DEFAULT_BANDWIDTH
    latency: float = DEFAULT_LATENCY

    def seconds(self, kind: str, nbytes: float, m: int) -> float:
        """Seconds of one collective of ``kind`` with ``nbytes`` per
        worker among ``m`` workers (see the module docstring)."""
        if m <= 1:
            return 0.0
        bps = self.bandwidth / 8.0
        if kind == "all_gather":
            return (m - 1) * (self.latency + nbytes / bps)
        if kind == "all_reduce":
            chunks = max(1, math.ceil(nbytes / m / CHUNK_BYTES))
            return 2 * (m - 1) * (chunks * self.latency + nbytes / m / bps)
        if kind == "all_to_all":
            return self.latency + (m - 1) * nbytes / m / bps
        raise ValueError(f"unknown collective kind {kind!r}")


def touched(n: int, k: int, m: int) -> float:
    """Expected coordinates the vote touches: ``N (1 - (1 - K/N)^M)``
    (independent supports; real gradients overlap more)."""
    return n * (1.0 - (1.0 - min(1.0, k / max(n, 1))) ** m)


def work_units(part: str, n: int, k: int, m: int) -> float:
    """Work of compute ``part`` (a key of :data:`DEFAULT_COMPUTE`) at N,
    K, M: elements for the passes over the gradient (finiteness check,
    encode, dense apply, packed messages), entries for a message, M x
    entries for the all-gather's host step (decode + vote of M rows), the
    touched coordinates for the sharded host step (one shard's vote, then
    every shard's vote decoded) and the sparse apply."""
    kind, _, rest = part.partition("/")
    if kind in ("check_finite", "encode", "dense_apply") or \
            rest.endswith("packed"):
        scale = m if kind == "host_step" else 1
        return float(scale * n)
    if kind == "message":
        return float(k)
    if kind == "host_step":
        return m * float(k) if rest.startswith("allgather") else \
            touched(n, k, m)
    if kind == "apply":
        return touched(n, k, m)
    raise ValueError(f"unknown compute part {part!r}")


def parts_of(option: Option) -> tuple:
    """The compute parts of one step of ``option`` (besides
    forward+backward); the top-K downlink is timed as the exact one."""
    if option.exchange == "dense":
        return ("dense_apply",)
    key = f"{option.exchange}/{option.wire}"
    return ("check_finite", f"encode/{option.exchange}", f"message/{key}",
            f"host_step/{key}", "apply")


def collectives_of(option: Option, n: int, k: int, m: int,
                   static_shapes: bool = True,
                   learning_vote: bool = False) -> list:
    """``[(kind, bytes per worker), ...]`` one step of ``option`` launches
    (see the module docstring)."""
    if m <= 1:
        return []
    if option.exchange == "dense":
        return [("all_reduce", 4 * n)]
    shape_round = [] if static_shapes else [("all_gather", 4)]
    if option.exchange == "allgather":
        words = allgather_message_words(n, k, option.wire)
        return shape_round + [("all_gather", 4 * words)]
    bucket, down = sharded_message_words(n, k, m, option.wire,
                                         option.downlink)
    out = [("all_to_all", 4 * m * bucket)]
    fmt = downlink_format(n, k, m, option.downlink)
    if option.downlink == "exact" and fmt[0] == "rice":
        out.append(("all_gather", 4))  # the messages' lengths
    out += shape_round + [("all_gather", 4 * down)]
    if learning_vote:
        out.append(("all_reduce", 4 * m))
    return out


@dataclasses.dataclass(frozen=True)
class Prediction:
    """Predicted seconds of one step of ``option``: ``seconds`` in all,
    ``parts`` (``{name: seconds}``: forward_backward, each compute part,
    ``comm``), ``collectives`` (``(kind, bytes, seconds)`` each) and
    ``notes`` (what came from defaults instead of a profile)."""

    option: Option
    seconds: float
    parts: dict
    collectives: tuple
    notes: tuple

    @property
    def comm(self) -> float:
        """Seconds in collectives."""
        return sum(t for _, _, t in self.collectives)


def predict(workload: Workload, options: Sequence = OPTIONS,
            profile: Profile | None = None,
            link: Link | None = None) -> list:
    """:class:`Prediction` of each of ``options`` (names or
    :class:`Option`) for ``workload``.

    Collectives: ``link`` when given (any M: extrapolation), else the
    profile's fits (its M must be the workload's: :meth:`Profile.check`),
    else the default :class:`Link`. Compute: the profile's parts (scaled
    by :func:`work_units`), else :data:`DEFAULT_COMPUTE`.
    Forward+backward: ``workload.forward_backward``, else the profile's,
    else 0. Every default used is named in the prediction's notes.
    """
    n, k, m = (int(workload.num_elements), int(workload.total_k),
               int(workload.num_replicas))
    notes = []
    if link is None and profile is not None:
        profile.check(num_replicas=m)
    if link is None and profile is None:
        link = Link()
        notes.append(f"no profile: default link {link.bandwidth / 1e9:g} "
                     f"Gbit/s, {link.latency * 1e3:g} ms per message")
    compute = dict(DEFAULT_COMPUTE)
    if profile is not None:
        compute.update(profile.compute)
    fb = workload.forward_backward
    if fb is None:
        fb = profile.forward_backward if profile is not None else None
    if fb is None:
        fb = 0.0
        notes.append("forward+backward unknown: counted as 0")
    out = []
    for option in options:
        option = option if isinstance(option, Option) else \
            Option.parse(option)
        parts, mine = {"forward_backward": fb}, list(notes)
        for part in parts_of(option):
            if profile is None or part not in profile.compute:
                if profile is not None:
                    mine.append(f"{part}: not in the profile, default")
            parts[part] = compute[part].seconds(work_units(part, n, k, m))
        colls = tuple(
            (kind, nbytes, link.seconds(kind, nbytes, m) if link else
             profile.collectives[kind].seconds(nbytes))
            for kind, nbytes in collectives_of(
                option, n, k, m, learning_vote=workload.learning_vote))
        parts["comm"] = sum(t for _, _, t in colls)
        out.append(Prediction(option, sum(parts.values()), parts, colls,
                              tuple(mine)))
    return out


__all__ = ["Option", "OPTIONS", "DENSE", "Workload", "Link", "Prediction",
           "predict", "work_units", "parts_of", "collectives_of", "touched",
           "Fit", "Part"]
