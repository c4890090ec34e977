"""NumPy reference of the Rice wire format (the spec is docs/WIRE.md).

Word for word the same output as the compiled ``RiceEncode``/``RiceDecode``
(tests prove it) and the same accept/reject decision on every input; used as
the fallback when the op library is missing, and as the readable statement
of the format. Encoding is vectorised; decoding walks the entries in Python
(the format is sequential), so it is slow for large messages.
"""

from __future__ import annotations

import bisect

import numpy as np

from ..constants import (MAX_ELEMENTS, PAD_CODE, RICE_HEADER_WORDS as
                         HEADER_WORDS, RICE_TAG_BASE as TAG_BASE)
from ..policy import rice_max_words as max_words, rice_parameter

__all__ = ["encode", "decode", "decode_or_drop", "max_words",
           "rice_parameter", "RiceFormatError"]


class RiceFormatError(ValueError):
    """Codes cannot be encoded, or words are not a valid Rice message."""


def _entries(codes: np.ndarray, n: int) -> np.ndarray:
    """The non-padding codes as int64, after checking the v1 rules."""
    codes = np.asarray(codes).reshape(-1).astype(np.int64)
    live = codes[codes != PAD_CODE]
    index = live >> 1
    problems = []
    if np.any(live < PAD_CODE):
        problems.append(f"code {live[live < PAD_CODE][0]} is negative and not "
                        "the padding code -1")
    elif np.any(index >= n):
        problems.append(f"index {index[index >= n][0]} outside [0, {n})")
    elif np.any(np.diff(index) <= 0):
        at = int(np.flatnonzero(np.diff(index) <= 0)[0])
        problems.append(f"index {index[at + 1]} not above index {index[at]} "
                        "(indices must strictly increase)")
    if problems:
        raise RiceFormatError("rice_encode: invalid codes: " + problems[0])
    return live


def encode(codes, n: int) -> np.ndarray:
    """Rice-encodes int32 codes ``[k]`` over ``n`` positions -> ``[W]``."""
    if not 0 <= n <= MAX_ELEMENTS:
        raise RiceFormatError(f"rice_encode: num_elements must be in "
                              f"[0, 2**30], got {n}")
    live = _entries(codes, n)
    count = live.size
    r = rice_parameter(n, count)
    index = live >> 1
    gap = index - np.concatenate([[-1], index[:-1]]) - 1
    quotient = gap >> r
    length = quotient + r + 2
    start = np.cumsum(length) - length
    stream_words = (int(length.sum()) + 31) // 32
    bits = np.zeros(stream_words * 32, np.uint8)
    stop = start + quotient  # the 1 that ends the unary run
    bits[stop] = 1
    bits[stop + 1] = live & 1
    for j in range(r):
        bits[stop + 2 + j] = (gap >> j) & 1
    stream = np.packbits(bits, bitorder="little").view("<u4").astype(np.int64)
    header = [HEADER_WORDS + stream_words, count, TAG_BASE | r]
    return np.concatenate([header, stream]).astype(np.uint32).view(np.int32)


def decode(words, n: int, k: int) -> np.ndarray:
    """Decodes one message -> int32 codes ``[k]``; raises RiceFormatError.

    ``words`` may be followed by zero words (padding to a common length).
    """
    words = np.asarray(words).reshape(-1).astype(np.int64)
    avail = words.size
    if k < 0 or not 0 <= n <= MAX_ELEMENTS:
        raise RiceFormatError(f"rice_decode: need k >= 0 and num_elements "
                              f"in [0, 2**30], got k = {k}, "
                              f"num_elements = {n}")
    if avail < HEADER_WORDS:
        raise RiceFormatError(f"rice_decode: message has {avail} words, "
                              "shorter than the 3-word header")
    used, count, tag = (int(v) for v in words[:HEADER_WORDS])
    if not HEADER_WORDS <= used <= avail:
        raise RiceFormatError(f"rice_decode: length word says {used} words, "
                              f"but the buffer holds {avail}")
    if not 0 <= count <= min(k, n):
        raise RiceFormatError(f"rice_decode: entry count {count} outside "
                              f"[0, {min(k, n)}]")
    r = rice_parameter(n, count)
    if tag != TAG_BASE | r:
        raise RiceFormatError(f"rice_decode: tag word {tag} is not the Rice "
                              f"v1 tag with parameter {r}")
    if np.any(words[used:] != 0):
        raise RiceFormatError("rice_decode: nonzero words after the message "
                              "(padding must be zeros)")
    stream = words[HEADER_WORDS:used].astype(np.uint32)
    total = stream.size * 32
    ones = np.flatnonzero(
        np.unpackbits(stream.astype("<u4").view(np.uint8), bitorder="little")
    ).tolist()
    as_int = [int(w) for w in stream] + [0]

    def field(pos: int, length: int) -> int:  # length <= 31 bits at pos
        w, off = pos >> 5, pos & 31
        both = as_int[w] | (as_int[w + 1] << 32)
        return (both >> off) & ((1 << length) - 1)

    out = np.full(k, PAD_CODE, np.int32)
    prev, pos = -1, 0
    for e in range(count):
        room = n - 2 - prev
        at = bisect.bisect_left(ones, pos)
        if room < 0 or at == len(ones) or ones[at] - pos > room >> r:
            raise RiceFormatError(f"rice_decode: entry {e}: stream ends early "
                                  "or the gap passes num_elements")
        stop = ones[at]
        if stop + 1 + r + 1 > total:
            raise RiceFormatError(f"rice_decode: entry {e}: stream ends early")
        low = field(stop + 1, r + 1)
        gap = ((stop - pos) << r) | (low >> 1)
        if gap > room:
            raise RiceFormatError(f"rice_decode: entry {e}: index "
                                  f"{prev + 1 + gap} >= num_elements {n}")
        prev += 1 + gap
        out[e] = (prev << 1) | (low & 1)
        pos = stop + r + 2
    if total - pos >= 32 or bisect.bisect_left(ones, pos) != len(ones):
        raise RiceFormatError("rice_decode: extra bits or words after the "
                              "last entry")
    return out


def decode_or_drop(words, n: int, k: int) -> tuple[np.ndarray, bool]:
    """Like decode, but an invalid message gives (all -1, False)."""
    try:
        return decode(words, n, k), True
    except RiceFormatError:
        return np.full(k, PAD_CODE, np.int32), False
