"""Bits and bytes of messages and collectives (no TensorFlow here)."""

from __future__ import annotations

import math

from ..constants import (MAX_ELEMENTS, PACKED_DIGITS_PER_WORD,
                         RICE_HEADER_WORDS, RICE_LN_PHI_Q16, RICE_MAX_R)


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


def entropy_bound_bits(n: int, k: int) -> float:
    """Information floor for k positions out of n plus k signs, in bits."""
    if k <= 0 or k > n:
        return 0.0
    log2_binom = (math.lgamma(n + 1) - math.lgamma(k + 1) -
                  math.lgamma(n - k + 1)) / math.log(2)
    return log2_binom + k


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


_BODY_WORDS = {
    "int32": lambda n, k, values: k * (2 if values else 1),
    "rice": lambda n, k, values: rice_max_words(n, k),
    "packed": lambda n, k, values: packed_sign_words(n),
}
