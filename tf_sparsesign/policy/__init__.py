"""How many entries each tensor sends (K), and what that costs in bits and
bytes (:mod:`.allocation`, :mod:`.bits`, :mod:`.exchange`).

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

from .allocation import (AUTO_BASE_DENSITY, AUTO_BASE_REPLICAS,  # noqa
                         AUTO_MIN_DENSITY, Density, allocate, auto_density,
                         validate, warn_if_wasteful)
from .bits import (allgather_bytes, bits_dense, bits_int32_codes,  # noqa
                   bits_signsgd, dense_ring_bytes, entropy_bound_bits,
                   rice_max_words, rice_parameter)
from .exchange import (AGGREGATIONS, DEFAULT_SHARD_CAPACITY,  # noqa
                       DOWNLINKS, allgather_message_words, bucket_capacity,
                       choose_aggregation, code_words, downlink_format,
                       exchange_bytes, expected_shard_votes,
                       sharded_message_words, shard_size, ternary_words)
