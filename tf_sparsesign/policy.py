"""How many entries each tensor sends (K), and what that costs in bits.

One source of truth for the arithmetic the library, the accounting and the
``plan`` command use (no TensorFlow: ``plan`` imports only this). Per
worker and step, uplink:

* dense fp32 all-reduce payload: ``32 * N`` bits,
* signSGD-MV (one sign per coordinate): ``N`` bits,
* S3GD-MV with int32 codes (wire format v1): ``32 * sum(K_l)`` bits,
* S3GD-MV with Rice codes: at most :func:`rice_max_words` words.

What crosses one worker's link: a ring all-reduce of fp32 values sends
:func:`dense_ring_bytes`; a ring all-gather of messages sends
:func:`allgather_bytes` (every other worker's message once).

So with int32 codes S3GD-MV sends fewer bits than signSGD-MV only when the
overall density ``sum(K_l) / N`` is below 1/32 (~3.1%). The information
floor for K positions out of N plus K signs is ``log2 C(N, K) + K`` bits.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Sequence, Union

from .constants import (MAX_ELEMENTS, RICE_HEADER_WORDS, RICE_LN_PHI_Q16,
                        RICE_MAX_R)

Density = Union[float, str]

#: The ``density="auto"`` target for up to this many replicas.
AUTO_BASE_DENSITY = 1.0 / 96.0
AUTO_BASE_REPLICAS = 8
AUTO_MIN_DENSITY = 1e-4


def auto_density(num_replicas: int) -> float:
    """The density ``"auto"`` picks for ``num_replicas`` voters.

    1/96 (about 1%) sends a third of signSGD-MV's bits with int32 codes;
    beyond 8 replicas it shrinks as 8/M so that the expected number of votes
    per coordinate (M * density) stays about 1/12, floored at 1e-4.
    """
    m = max(1, int(num_replicas))
    scale = min(1.0, AUTO_BASE_REPLICAS / m)
    return max(AUTO_MIN_DENSITY, AUTO_BASE_DENSITY * scale)


def validate(density: Density | None, k: int | None) -> None:
    """Raises ValueError for a setting that can never be valid."""
    if k is not None:
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise ValueError(f"k must be a positive int, got {k!r}")
        if k <= 0:
            raise ValueError(f"k must be a positive int, got {k}")
        return
    if density == "auto":
        return
    if isinstance(density, bool) or not isinstance(density, numbers.Real):
        raise ValueError(f"density must be a float in (0, 1] or 'auto', got "
                         f"{density!r}")
    if not 0.0 < float(density) <= 1.0 or math.isnan(float(density)):
        raise ValueError(f"density must be in (0, 1], got {density}")


def allocate(sizes: Sequence[int], density: Density | None = 0.01,
             k: int | None = None, num_replicas: int = 1) -> list[int]:
    """K per tensor.

    Args:
      sizes: element counts ``n_l`` of the tensors, in order.
      density: ``K_l = ceil(density * n_l)``, or ``"auto"`` (see
        :func:`auto_density`). Ignored when ``k`` is given.
      k: a total spread over tensors in proportion to size (largest
        remainders; every tensor at most its size).
      num_replicas: number of voters M, used by ``"auto"``.

    Returns:
      list of ints, ``0 <= K_l <= n_l``.

    Example:

    >>> allocate([1000, 10], density=0.01)
    [10, 1]
    >>> allocate([1000, 10], k=101)
    [100, 1]
    """
    validate(density, k)
    sizes = [int(s) for s in sizes]
    total = sum(sizes)
    if k is not None:
        if k > total:
            raise ValueError(f"k = {k} is larger than the model: the "
                             f"trainable tensors have {total} elements")
        exact = [k * s / total for s in sizes]
        ks = [math.floor(e) for e in exact]
        left = k - sum(ks)
        order = sorted(range(len(sizes)), key=lambda i: (ks[i] - exact[i], i))
        for i in order:
            if left == 0:
                break
            if ks[i] < sizes[i]:
                ks[i] += 1
                left -= 1
        return ks
    d = auto_density(num_replicas) if density == "auto" else float(density)
    return [min(s, math.ceil(d * s)) for s in sizes]


def bits_dense(n: int) -> int:
    """Bits of one worker's dense fp32 gradient."""
    return 32 * int(n)


def bits_signsgd(n: int) -> int:
    """Bits of one worker's signSGD-MV message (a sign per coordinate)."""
    return int(n)


def bits_int32_codes(total_k: int) -> int:
    """Bits of one worker's S3GD-MV message in wire format v1."""
    return 32 * int(total_k)


def entropy_bound_bits(n: int, k: int) -> float:
    """Information floor for k positions out of n plus k signs, in bits."""
    if k <= 0 or k > n:
        return 0.0
    log2_binom = (math.lgamma(n + 1) - math.lgamma(k + 1) -
                  math.lgamma(n - k + 1)) / math.log(2)
    return log2_binom + k


def warn_if_wasteful(sizes: Sequence[int], ks: Sequence[int]) -> None:
    """Warns when the codes cost more bits than signSGD-MV would."""
    n, total_k = sum(sizes), sum(ks)
    if bits_int32_codes(total_k) > bits_signsgd(n):
        warnings.warn(
            f"tf_sparsesign: K = {total_k} of N = {n} (density "
            f"{total_k / max(n, 1):.2%}) sends {bits_int32_codes(total_k)} "
            f"bits per step with int32 codes, more than signSGD-MV's {n} "
            "(one bit per coordinate). Below ~3.1% density int32 codes win; "
            "choose a smaller density or k.", UserWarning, stacklevel=3)


def dense_ring_bytes(num_elements: int, num_replicas: int) -> int:
    """Bytes one replica sends in a ring all-reduce of fp32 values:
    ``2 (M-1)/M * 4 N``.

    >>> dense_ring_bytes(1_000_000, 8)
    7000000
    """
    r = max(int(num_replicas), 1)
    return int(math.floor(2 * (r - 1) / r * 4 * num_elements))


def allgather_bytes(message_bits: int, num_replicas: int) -> int:
    """Bytes crossing one replica's link in a ring all-gather of messages of
    ``message_bits`` each: every other replica's message once.

    >>> allgather_bytes(3200, 8)
    2800
    """
    return (max(int(num_replicas), 1) - 1) * int(message_bits) // 8


def rice_parameter(n: int, count: int) -> int:
    """The Rice parameter r for ``count`` entries among ``n`` positions.

    The smallest ``r >= 0`` with ``count * 2**r >= ceil(ln(phi) * n)`` (phi
    the golden ratio): the best power-of-two Golomb parameter for the
    geometric gaps uniformly spread positions produce (Kiely 2004), in
    integers so every implementation agrees. Each entry then costs
    ``(gap >> r) + r + 2`` bits.

    >>> rice_parameter(1_000_000, 10_000), rice_parameter(1_000_000, 1_000)
    (6, 9)
    """
    n, count = int(n), int(count)
    if count <= 0 or n <= 0:
        return 0
    n = min(n, MAX_ELEMENTS)
    target = (n * RICE_LN_PHI_Q16 + 0xFFFF) >> 16
    r = 0
    while r < RICE_MAX_R and (count << r) < target:
        r += 1
    return r


def _rice_max_stream_bits(n: int, count: int) -> int:
    if count <= 0:
        return 0
    r = rice_parameter(n, count)
    return count * (r + 2) + ((n - count) >> r)


def rice_max_words(n: int, k: int) -> int:
    """Most int32 words (header included) a Rice message of at most ``k``
    entries over ``n`` positions can take, whatever the positions; every
    worker's message is padded to this so the all-gather sees one shape
    (about 5% above a typical message).

    >>> rice_max_words(1_000_000, 10_000)  # vs 10_000 int32 codes
    2987
    """
    n = min(max(int(n), 0), MAX_ELEMENTS)
    kmax = min(max(int(k), 0), n)
    bits = _rice_max_stream_bits(n, kmax)
    target = (n * RICE_LN_PHI_Q16 + 0xFFFF) >> 16
    for r in range(1, RICE_MAX_R + 1):  # the last count of each parameter
        step = 1 << (r - 1)
        last = min(kmax, (target + step - 1) // step - 1)
        if last >= 0:
            bits = max(bits, _rice_max_stream_bits(n, last))
    return RICE_HEADER_WORDS + (bits + 31) // 32
