"""How many entries each tensor sends (K), and what that costs in bits.

One source of truth for the arithmetic the library, the accounting, the
codecs and the ``plan`` command use (no TensorFlow: ``plan`` imports only
this). Per worker and step, uplink, every message starting with a one-word
settings fingerprint (:data:`FRAME_WORDS`, :func:`message_bits`):

* dense fp32 all-reduce payload: ``32 * N`` bits;
* signSGD-MV as the literature counts it (one sign bit per coordinate,
  zeros sent as +1): ``N`` bits (:func:`bits_signsgd`);
* this library's signSGD-MV (``density=1``: every coordinate sent as one
  ternary digit, +, - or abstain, five per byte): ``32 * ceil(N / 20)``
  bits, 1.6 per coordinate (:func:`bits_packed_signs`);
* S3GD-MV with int32 codes (wire format v1): ``32 * sum(K_l)`` bits;
* S3GD-MV with Rice codes: at most :func:`rice_max_words` words.

What crosses one worker's link: a ring all-reduce of fp32 values sends
:func:`dense_ring_bytes`; a ring all-gather of messages sends
:func:`allgather_bytes` (every other worker's message once).

So with int32 codes S3GD-MV sends fewer bits than this library's
signSGD-MV when the overall density ``sum(K_l) / N`` is below 1.6/32 = 5%
(below 1/32, ~3.1%, against a 1-bit signSGD-MV); with Rice codes below about
45%. The information floor for K positions out of N plus K signs is
``log2 C(N, K) + K`` bits; for a ternary digit per coordinate it is
``log2(3) = 1.585`` bits.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Sequence, Union

from .constants import (MAX_ELEMENTS, PACKED_DIGITS_PER_WORD,
                        RICE_HEADER_WORDS, RICE_LN_PHI_Q16, RICE_MAX_R)

Density = Union[float, str]

#: The ``density="auto"`` target for up to this many replicas.
AUTO_BASE_DENSITY = 1.0 / 96.0
AUTO_BASE_REPLICAS = 8
AUTO_MIN_DENSITY = 1e-4


def auto_density(num_replicas: int) -> float:
    """The density ``"auto"`` picks for ``num_replicas`` voters.

    1/96 (about 1%) sends a third of a 1-bit signSGD-MV's bits (a fifth
    of this library's packed signSGD-MV) with int32 codes;
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
    """Bits of one worker's signSGD-MV message as the literature counts it:
    one sign bit per coordinate (zeros sent as +1). This library sends
    :func:`bits_packed_signs` instead (zeros abstain)."""
    return int(n)


def packed_sign_words(n: int) -> int:
    """int32 words of a packed-signs message over ``n`` coordinates: one
    ternary digit each (sent +, sent -, not sent), 20 per word.

    >>> packed_sign_words(101_770), packed_sign_words(20)
    (5089, 1)
    """
    return -(-int(n) // PACKED_DIGITS_PER_WORD)


def bits_packed_signs(n: int) -> int:
    """Bits of a packed-signs message body, ``32 * ceil(n / 20)``: 1.6 per
    coordinate, within 1% of the ternary floor ``log2(3)``."""
    return 32 * packed_sign_words(n)


def bits_int32_codes(total_k: int) -> int:
    """Bits of one worker's S3GD-MV message in wire format v1."""
    return 32 * int(total_k)


#: Words ahead of every message's body: the settings fingerprint.
FRAME_WORDS = 1


def codec_words(wire: str, n: int, k: int, with_values: bool = False
                ) -> int:
    """int32 words of one message body (after the fingerprint) in the
    format ``wire`` for ``k`` entries among ``n`` coordinates; the codecs
    in ``aggregation/codec/`` take their length from here.

    ``"int32"``: ``k`` codes (``2k`` words with values); ``"rice"``:
    :func:`rice_max_words`; ``"packed"``: :func:`packed_sign_words` (any
    ``k``).

    >>> [codec_words(w, 1_000_000, 10_000) for w in ("int32", "rice",
    ...                                             "packed")]
    [10000, 2987, 50000]
    """
    if wire not in _BODY_WORDS:
        raise ValueError(f"wire must be one of {tuple(_BODY_WORDS)}, got "
                         f"{wire!r}")
    return _BODY_WORDS[wire](int(n), int(k), bool(with_values))


def message_bits(wire: str, n: int, k: int, with_values: bool = False
                 ) -> int:
    """Bits of one worker's whole message (fingerprint + body), exactly
    what the accounting counts (``8 * message_bytes``)."""
    return 32 * (FRAME_WORDS + codec_words(wire, n, k, with_values))


def sends_everything(sizes: Sequence[int], ks: Sequence[int]) -> bool:
    """True when every tensor sends all its entries (density 1): then
    ``method="sign_vote"`` is signSGD-MV, and runs without selection as
    packed signs (:func:`tf_sparsesign.aggregation.registry.choose`)."""
    return [int(k) for k in ks] == [int(s) for s in sizes]


def entropy_bound_bits(n: int, k: int) -> float:
    """Information floor for k positions out of n plus k signs, in bits."""
    if k <= 0 or k > n:
        return 0.0
    log2_binom = (math.lgamma(n + 1) - math.lgamma(k + 1) -
                  math.lgamma(n - k + 1)) / math.log(2)
    return log2_binom + k


def warn_if_wasteful(sizes: Sequence[int], ks: Sequence[int],
                     wire: str = "int32", with_values: bool = False) -> None:
    """Warns when the messages cost more bits than this library's
    signSGD-MV (``density=1``, packed signs) would."""
    n, total_k = sum(sizes), sum(ks)
    mine = codec_words(wire, n, total_k, with_values)
    sign = packed_sign_words(n)
    if mine > sign:
        warnings.warn(
            f"tf_sparsesign: K = {total_k} of N = {n} (density "
            f"{total_k / max(n, 1):.2%}) sends {32 * mine} bits per step "
            f"with wire={wire!r}, more than signSGD-MV's {32 * sign} "
            "(density=1.0: every coordinate packed in 1.6 bits). int32 codes"
            " win below ~5% density, Rice codes below ~45%; choose a "
            "smaller density or k.", UserWarning, stacklevel=3)


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


_BODY_WORDS = {
    "int32": lambda n, k, values: k * (2 if values else 1),
    "rice": lambda n, k, values: rice_max_words(n, k),
    "packed": lambda n, k, values: packed_sign_words(n),
}
