"""Bytes of the exchanges, all-gather and sharded (no TensorFlow here)."""

from __future__ import annotations

import math

from .bits import FRAME_WORDS, codec_words, rice_max_words

# Per worker and step, from the messages' static sizes in int32 words (each
# message carries a 1-word settings fingerprint):
#
# * all-gather: one message of the step's K codes (int32: K words; Rice:
#   rice_max_words(N, K)); every other worker's message crosses the link.
# * sharded: coordinate i belongs to worker i mod M (shard b holds
#   ceil((N - b) / M) coordinates). Uplink: M buckets of capacity
#   C = ceil(alpha * K / M) codes in the shard's local index space, one
#   all-to-all (M - 1 buckets leave, M - 1 arrive). Downlink: each shard's
#   vote, one all-gather: "exact" sends every nonzero vote (Rice-coded, or
#   packed ternary, 5 trits per byte, whichever is smaller in the worst
#   case); "topk" sends the ceil(K / M) coordinates of largest |tally|
#   (Rice).

#: ``downlink=``: what a shard returns in the sharded exchange.
DOWNLINKS = ("exact", "topk")
#: Default bucket capacity factor of the sharded exchange.
DEFAULT_SHARD_CAPACITY = 1.25


def shard_size(n: int, m: int) -> int:
    """Coordinates of the largest shard: ``ceil(n / m)``."""
    return -(-int(n) // max(int(m), 1))


def bucket_capacity(total_k: int, m: int,
                    alpha: float = DEFAULT_SHARD_CAPACITY) -> int:
    """Codes per bucket of the sharded uplink: ``ceil(alpha * K / M)``."""
    return max(1, math.ceil(alpha * int(total_k) / max(int(m), 1)))


def ternary_words(num_elements: int) -> int:
    """int32 words of a packed ternary vector, 5 trits per byte."""
    return -(-(-(-int(num_elements) // 5)) // 4)


def expected_shard_votes(n: int, total_k: int, m: int) -> int:
    """Expected nonzero votes of the largest shard when the workers' K
    coordinates are independent and uniform: ``N_b (1 - (1 - K/N)^M)`` (an
    upper estimate: real gradients overlap more)."""
    nb = shard_size(n, m)
    d = min(1.0, int(total_k) / max(int(n), 1))
    return min(nb, math.ceil(nb * (1.0 - (1.0 - d) ** int(m))))


def downlink_format(n: int, total_k: int, m: int, downlink: str,
                    alpha: float = DEFAULT_SHARD_CAPACITY) -> tuple:
    """``(format, slots, words)`` of one shard's downlink message (without
    the fingerprint).

    * ``"topk"``: ``("rice", ceil(K/M), worst-case words)``, fixed size.
    * ``"exact"``: ``("ternary", 0, words)`` (fixed size), or ``("rice",
      most, expected words)``: Rice messages have the length of the
      largest shard's actual message (one tiny all-gather of the lengths
      first); ``most`` bounds the entries (``min(N_b, M * C)``) and the
      words are those of :func:`expected_shard_votes` entries. The format
      is whichever of the two is smaller for that expectation.
    """
    nb = shard_size(n, m)
    if downlink == "topk":
        kd = min(nb, -(-int(total_k) // max(int(m), 1)))
        return "rice", kd, rice_max_words(nb, kd)
    most = min(nb, int(m) * bucket_capacity(total_k, m, alpha))
    rice = rice_max_words(nb, min(most, expected_shard_votes(n, total_k, m)))
    if rice <= ternary_words(nb):
        return "rice", most, rice
    return "ternary", 0, ternary_words(nb)


def allgather_message_words(n: int, total_k: int, wire: str,
                            with_values: bool = False) -> int:
    """Words of one all-gather message, fingerprint included."""
    return FRAME_WORDS + codec_words(wire, n, total_k, with_values)


def sharded_message_words(n: int, total_k: int, m: int, wire: str,
                          downlink: str,
                          alpha: float = DEFAULT_SHARD_CAPACITY) -> tuple:
    """``(bucket, downlink)`` words of one sharded step's messages,
    fingerprints included (M buckets go up, one downlink message comes
    from each shard)."""
    nb = shard_size(n, m)
    bucket = FRAME_WORDS + codec_words(wire, nb,
                                       bucket_capacity(total_k, m, alpha))
    return bucket, FRAME_WORDS + downlink_format(n, total_k, m, downlink,
                                                 alpha)[2]


def allgather_wire(words, m):
    """``(own, sent, received)`` bytes of the all-gather exchange for a
    message of ``words`` int32 words (fingerprint included): every other
    worker's message crosses the link once. ``words`` may be a Python int
    or a tensor (the exchange counts its real messages with this)."""
    own = 4 * words
    return own, (m - 1) * own, (m - 1) * own


def sharded_wire(bucket_words, down_words, m):
    """``(own, sent, received)`` bytes of the sharded exchange: M buckets
    of ``bucket_words`` go up (one all-to-all: M - 1 leave, M - 1 arrive),
    one downlink message of ``down_words`` comes from each shard (one
    all-gather), fingerprints included."""
    own = 4 * (m * bucket_words + down_words)
    others = 4 * (m - 1) * (bucket_words + down_words)
    return own, others, others


def _allgather_bytes(n, total_k, m, wire, downlink, alpha):
    return allgather_wire(allgather_message_words(n, total_k, wire), m)


def _sharded_bytes(n, total_k, m, wire, downlink, alpha):
    return sharded_wire(*sharded_message_words(n, total_k, m, wire,
                                               downlink, alpha), m)


#: Each exchange's byte model by its name (the keys of
#: :data:`tf_sparsesign.aggregation.registry.EXCHANGES`):
#: ``(n, total_k, m, wire, downlink, alpha) -> (own, sent, received)``.
BYTE_MODELS = {"allgather": _allgather_bytes, "sharded": _sharded_bytes}


def exchange_bytes(n: int, total_k: int, m: int, wire: str,
                   aggregation: str, downlink: str = "exact",
                   alpha: float = DEFAULT_SHARD_CAPACITY) -> dict:
    """Bytes per worker per step of one exchange (:data:`BYTE_MODELS`):
    ``message`` (this worker's own messages), ``sent`` and ``received``
    (what crosses its link). Exact for fixed-size messages; for the sharded
    "exact" downlink in Rice format, the expectation of
    :func:`downlink_format`.

    >>> exchange_bytes(1000, 10, 4, "int32", "allgather")["sent"]
    132
    """
    if aggregation not in BYTE_MODELS:
        raise ValueError(f"aggregation must be one of {tuple(BYTE_MODELS)}, "
                         f"got {aggregation!r}")
    own, sent, received = BYTE_MODELS[aggregation](
        n, total_k, max(int(m), 1), wire, downlink, alpha)
    return {"message": own, "sent": sent, "received": received}


def choose_aggregation(n: int, total_k: int, m: int, wire: str,
                       alpha: float = DEFAULT_SHARD_CAPACITY,
                       candidates=tuple(BYTE_MODELS)) -> str:
    """``aggregation="auto"``: the candidate exchange that sends the fewest
    bytes by :func:`exchange_bytes` with the "exact" downlink (never
    "topk", which changes the algorithm); ties go to the first."""
    sent = [exchange_bytes(n, total_k, m, wire, name, "exact", alpha)["sent"]
            for name in candidates]
    return candidates[sent.index(min(sent))]
