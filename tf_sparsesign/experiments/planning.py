"""``tf-sparsesign plan``: what each method costs on the wire, before training.

All bit and byte counts come from :mod:`tf_sparsesign.policy` (the same
functions the library's codecs and accounting use, and the same choice of
codec, :func:`tf_sparsesign.aggregation.registry.choose`), so the numbers
printed here are the numbers ``communication_stats`` reports after a real
run with the same settings. No TensorFlow is imported.

Collective model (per worker, per step, what crosses one worker's link):

* dense fp32: a ring all-reduce, ``2 (M-1)/M * 4 N`` bytes;
* every voting method: a ring all-gather of the workers' messages, so each
  worker's link carries the ``M-1`` other messages: ``(M-1) * message``;
* the sharded exchange (``aggregation="sharded"``): an all-to-all of M
  buckets and an all-gather of the shard votes, ``M-1`` of each crossing
  the link (:func:`tf_sparsesign.policy.exchange_bytes`; the "exact"
  downlink's Rice messages by their expected length). Its "message bits"
  are all of a worker's own buckets and its shard's vote.

Message sizes (uplink, one worker, :func:`tf_sparsesign.policy.message_bits`:
a 4-byte settings fingerprint, then the body): dense ``32 N`` bits;
signSGD-MV as the literature counts it, one bit per coordinate, ``N`` bits;
this library's signSGD-MV (``density=1``) one ternary digit per coordinate,
``32 * ceil(N / 20)``; S3GD-MV with int32 codes ``32 * sum K``, with Rice
codes :func:`~tf_sparsesign.policy.rice_max_words` words (what every
message is padded to); ``topk_values`` a value per code, ``32 * 2 sum K``.
The model is treated as one tensor of ``N`` elements (``K = ceil(density *
N)``); with several tensors ``K`` is the sum of per-tensor ceilings, at most
one more per tensor (``--sizes`` gives the exact per-tensor allocation).
Communication is assumed not to overlap computation.

Example:

>>> rows = plan(1_000_000, 8)
>>> [r.name for r in rows][:3]
['dense fp32 (all-reduce)', 'signSGD-MV, 1 bit/coord (literature)', \
'signSGD-MV, this library (packed, 1.6 bits/coord)']
>>> rows[0].wire_bytes
7000000
"""

from __future__ import annotations

import dataclasses
import math
import re

from .. import policy
from ..aggregation import registry
from ..config import SparseSignConfig

#: Multipliers of the SI and binary prefixes accepted in units.
_PREFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
           "Ki": 2.0 ** 10, "Mi": 2.0 ** 20, "Gi": 2.0 ** 30,
           "Ti": 2.0 ** 40}
_BANDWIDTH = re.compile(
    r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*"
    r"(Ki|Mi|Gi|Ti|k|K|M|G|T)?"
    r"(bits?|bit|b|bps|Bps|B|bytes?|byte)?\s*(/\s*s(?:ec)?)?\s*$")
_DURATION = re.compile(
    r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(us|µs|ms|s|sec|min)?\s*$")
_SECONDS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0,
            "min": 60.0, None: 1.0}


def parse_bandwidth(text: str) -> float:
    """A link speed as bits per second.

    Lower-case ``b``/``bit``/``bps`` mean bits, upper-case ``B``/``byte``/
    ``Bps`` mean bytes; prefixes are SI (k, M, G, T = 10^3..10^12) or binary
    (Ki, Mi, Gi, Ti). A bare number is bits per second.

    >>> parse_bandwidth("1Gbit/s")
    1000000000.0
    >>> parse_bandwidth("100 MB/s")
    800000000.0
    >>> parse_bandwidth("10Mbps")
    10000000.0
    """
    m = _BANDWIDTH.match(str(text))
    if not m or (m.group(3) is None and m.group(2) is not None):
        raise ValueError(
            f"bandwidth {text!r} not understood; expected a number and a "
            "unit such as '1Gbit/s', '10 Gbps', '100Mbit/s', '125MB/s', "
            "'1GiB/s' (b/bit = bits, B/byte = bytes)")
    value = float(m.group(1)) * _PREFIX[m.group(2) or ""]
    unit = m.group(3) or "bit"
    if unit in ("B", "Bps", "byte", "bytes"):
        value *= 8
    if value <= 0:
        raise ValueError(f"bandwidth must be positive, got {text!r}")
    return value


def parse_duration(text: str) -> float:
    """A duration as seconds (``us``, ``ms``, ``s``, ``min``; bare = s).

    >>> parse_duration("50ms")
    0.05
    >>> parse_duration("2 s")
    2.0
    """
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"duration {text!r} not understood; expected e.g. "
                         "'50ms', '0.2s', '1min'")
    return float(m.group(1)) * _SECONDS[m.group(2)]


@dataclasses.dataclass(frozen=True)
class PlanRow:
    """One method's cost per worker per step.

    Attributes:
      name: the method.
      density: fraction of coordinates sent (1.0 for dense/signSGD-MV).
      total_k: entries sent per step (N for dense / signSGD-MV).
      message_bits: one worker's message (uplink), bits.
      wire_bytes: bytes crossing one worker's link per step under the
        collective model (ring all-reduce or ring all-gather).
      entropy_bits: information floor of one message (positions + signs),
        ``None`` where it does not apply.
    """

    name: str
    density: float
    total_k: int
    message_bits: int
    wire_bytes: int
    entropy_bits: float | None

    @property
    def message_bytes(self) -> float:
        return self.message_bits / 8


def _row(name, density, total_k, bits, workers, floor) -> PlanRow:
    return PlanRow(name, density, total_k, bits,
                   policy.allgather_bytes(bits, workers), floor)


def _sharded_row(d, k, n, m, wire, downlink, floor) -> PlanRow:
    """S3GD-MV with ``aggregation="sharded"``: M buckets up (all-to-all),
    the shard votes down (all-gather); bytes from
    :func:`tf_sparsesign.policy.exchange_bytes`."""
    cost = policy.exchange_bytes(n, k, m, wire, "sharded", downlink)
    return PlanRow(f"S3GD-MV {_density_label(d, m)}, {wire}, sharded "
                   f"{downlink}", k / n, k, 8 * cost["message"],
                   cost["sent"], floor)


def _floor(sizes, ks) -> float:
    """Information floor of K positions + signs per tensor, summed."""
    return sum(policy.entropy_bound_bits(s, k) for s, k in zip(sizes, ks))


def _density_label(d, workers) -> str:
    return (f"auto ({policy.auto_density(workers):.3%})" if d == "auto"
            else f"{float(d):g}")


def plan(params: int | None, workers: int, densities=(0.01, 0.001, "auto"),
         topk_density: float | None = 0.01,
         sizes: list[int] | None = None,
         wires=("int32", "rice")) -> list[PlanRow]:
    """Per-worker per-step costs of every method for ``params`` coordinates
    and ``workers`` workers (see the module docstring for the model).

    Rows, in order: dense fp32; signSGD-MV at 1 bit per coordinate (the
    literature's count); this library's signSGD-MV (``density=1``, packed
    signs); S3GD-MV at each of ``densities`` with each wire format of
    ``wires``, all-gathered and (for ``workers > 1``) sharded with each
    downlink; top-K values at ``topk_density`` (None: no row).

    ``sizes`` (the element counts of the trainable tensors) makes K the sum
    of per-tensor ceilings exactly as the library allocates it, so the
    numbers equal the accounting of a real run; ``params`` is then their
    sum (and may be None).

    >>> rows = plan(None, 8, [0.01], sizes=[100352, 128, 1280, 10])
    >>> [(r.name, r.wire_bytes) for r in rows[3:5]]
    [('S3GD-MV 0.01, int32', 28588), ('S3GD-MV 0.01, rice', 8652)]
    """
    n, m, sizes = _check(params, workers, sizes)
    rows = [PlanRow("dense fp32 (all-reduce)", 1.0, n, policy.bits_dense(n),
                    policy.dense_ring_bytes(n, m), None)]
    rows.append(_row("signSGD-MV, 1 bit/coord (literature)", 1.0, n,
                     policy.bits_signsgd(n), m, float(n)))
    # What the library runs for density=1, method="sign_vote".
    wire = registry.choose(SparseSignConfig(density=1.0,
                                            error_feedback=False),
                           True, n, n, m).wire
    rows.append(_row("signSGD-MV, this library (packed, 1.6 bits/coord)",
                     1.0, n, policy.message_bits(wire, n, n), m,
                     n * math.log2(3)))
    for d in densities:
        ks = policy.allocate(sizes, d, num_replicas=m)
        k = sum(ks)
        for wire in wires:
            rows.append(_row(f"S3GD-MV {_density_label(d, m)}, {wire}",
                             k / n, k, policy.message_bits(wire, n, k), m,
                             _floor(sizes, ks)))
            if m > 1:
                rows += [_sharded_row(d, k, n, m, wire, downlink,
                                      _floor(sizes, ks))
                         for downlink in policy.DOWNLINKS]
    if topk_density is not None:
        ks = policy.allocate(sizes, topk_density)
        k = sum(ks)
        rows.append(_row(f"top-K values {topk_density:g}", k / n, k,
                         policy.message_bits("int32", n, k, True), m,
                         _floor(sizes, ks)))
    return rows


def _check(params, workers, sizes):
    """``(N, M, sizes)`` from the arguments, or a ValueError saying what is
    wrong."""
    if sizes is not None:
        sizes = [int(v) for v in sizes]
        if not sizes or min(sizes) <= 0:
            raise ValueError(f"sizes must be positive ints, got {sizes}")
        if params is not None and int(params) != sum(sizes):
            raise ValueError(f"params = {params} but the sizes sum to "
                             f"{sum(sizes)}")
        params = sum(sizes)
    if params is None:
        raise ValueError("give params (N) or sizes")
    n, m = int(params), int(workers)
    if n <= 0:
        raise ValueError(f"params must be a positive int, got {params}")
    if m <= 0:
        raise ValueError(f"workers must be a positive int, got {workers}")
    return n, m, sizes or [n]


def _fmt_bytes(b: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= scale:
            return f"{b / scale:.2f} {unit}"
    return f"{b:.0f} B"


def fmt_time(s: float) -> str:
    """A duration in h, min, s or ms."""
    if s >= 3600:
        return f"{s / 3600:.2f} h"
    if s >= 60:
        return f"{s / 60:.2f} min"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} us"


def format_plan(rows: list[PlanRow], params: int, workers: int,
                bandwidth_bps: float, step_compute_s: float = 0.0,
                steps_per_epoch: int | None = None) -> str:
    """The table ``tf-sparsesign plan`` prints."""
    dense = rows[0]
    lines = [
        f"N = {params:,} parameters, M = {workers} workers, link "
        f"{bandwidth_bps / 1e9:g} Gbit/s, compute {step_compute_s * 1e3:g} "
        "ms/step" + (f", {steps_per_epoch:,} steps/epoch"
                     if steps_per_epoch else ""),
        "collective model: dense = ring all-reduce, 2(M-1)/M * 4N bytes per "
        "worker; voting methods = ring all-gather, (M-1) * message bytes per "
        "worker; sharded = all-to-all of M buckets + all-gather of the shard "
        "votes, M-1 of each per worker; communication does not overlap "
        "compute.",
        "",
    ]
    head = ["method", "density", "K", "message bits", "message bytes",
            "wire bytes/step", "x fewer than dense", "comm/step",
            "step time"]
    if steps_per_epoch:
        head.append("comm/epoch")
    head.append("entropy floor bits")
    table = [head]
    for r in rows:
        comm = 8 * r.wire_bytes / bandwidth_bps
        cells = [r.name, f"{r.density:.4%}", f"{r.total_k:,}",
                 f"{r.message_bits:,}", f"{r.message_bytes:,.0f}",
                 f"{r.wire_bytes:,} ({_fmt_bytes(r.wire_bytes)})",
                 f"{dense.wire_bytes / max(r.wire_bytes, 1):.1f}",
                 fmt_time(comm), fmt_time(comm + step_compute_s)]
        if steps_per_epoch:
            cells.append(fmt_time(comm * steps_per_epoch))
        cells.append("-" if r.entropy_bits is None else
                     f"{r.entropy_bits:,.0f} "
                     f"({r.entropy_bits / r.total_k:.2f}/entry)")
        table.append(cells)
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for j, row in enumerate(table):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += ["", "Against this library's signSGD-MV (1.6 bits per "
              "coordinate: zeros abstain, so each coordinate is one of 3 "
              "states) int32 codes send fewer bits below 5% density, Rice "
              "codes below ~45%; against a 1-bit signSGD-MV below 3.1% and "
              "~20%. The entropy floor is what an ideal position + sign "
              "coder would need (log2(3) bits per coordinate for the "
              "packed row)."]
    return "\n".join(lines)
