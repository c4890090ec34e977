"""How many entries each tensor sends (K), and what that costs in bits and
bytes (:mod:`.allocation`, :mod:`.bits`, :mod:`.exchange`).

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

from .allocation import (AUTO_BASE_DENSITY, AUTO_BASE_REPLICAS,  # noqa
                         AUTO_MIN_DENSITY, Density, allocate, auto_density,
                         sends_everything, validate, warn_if_wasteful)
from .bits import (FRAME_WORDS, allgather_bytes, bits_dense,  # noqa
                   bits_int32_codes, bits_packed_signs, bits_signsgd,
                   codec_words, dense_ring_bytes, entropy_bound_bits,
                   message_bits, packed_sign_words, rice_max_words,
                   rice_parameter)
from .exchange import (BYTE_MODELS, DEFAULT_SHARD_CAPACITY,  # noqa
                       DOWNLINKS, allgather_message_words, allgather_wire,
                       bucket_capacity, choose_aggregation, downlink_format,
                       exchange_bytes, expected_shard_votes,
                       sharded_message_words, sharded_wire, shard_size,
                       ternary_words)
from .profile import (Fit, Part, Profile, ProfileMismatch,  # noqa
                      fit_collective, fit_part, load_profile)
from .ranking import MODEL_ERROR, Ranking, rank  # noqa
from .roi import (Prices, RunEstimate, break_even_bandwidth,  # noqa
                  estimate, sent_bytes, step_seconds_at)
from .timing import (OPTIONS, Link, Option, Prediction, Workload,  # noqa
                     collectives_of, predict, work_units)
