"""The time model's defaults, used (and said) when there is no profile
(no TensorFlow here).

Sources: ``CHUNK_BYTES`` is TensorFlow's ring chunk limit; the link
defaults are ``plan``'s 1 Gbit/s and the per-message latency measured on
loopback (the all-gather floor of a 2-worker calibration); the compute
parts are a calibration of the 11.6M-parameter MLP of
``benchmarks/network.py`` on the development machine (2 shared cores, 1
intra-op thread per worker, M = 2 workers) — see docs/NETWORK.md, "Time,
not bytes", for the commands.
"""

from __future__ import annotations

from .profile import Part

#: TensorFlow's ring collectives cut a tensor into chunks of at most this
#: many bytes, each sent as its own call.
CHUNK_BYTES = 4 * 1024 * 1024
#: Default link: bits per second per worker and direction.
DEFAULT_BANDWIDTH = 1e9
#: Default seconds per collective message (a gRPC call, software included).
DEFAULT_LATENCY = 0.5e-3

#: Compute parts (``c0`` seconds + ``c1`` seconds per work unit, see
#: :func:`tf_sparsesign.policy.timing.work_units`).
DEFAULT_COMPUTE = {
    "check_finite": Part(2e-4, 2.0e-9),
    "encode/allgather": Part(5e-4, 2.5e-9),
    "encode/sharded": Part(5e-4, 2.5e-9),
    "message/allgather/int32": Part(2e-4, 5e-9),
    "message/allgather/rice": Part(3e-4, 5e-8),
    "message/allgather/packed": Part(3e-4, 1e-10),
    "message/sharded/int32": Part(1e-3, 2e-7),
    "message/sharded/rice": Part(1e-3, 2.5e-7),
    "host_step/allgather/int32": Part(5e-4, 6e-8),
    "host_step/allgather/rice": Part(5e-4, 8e-8),
    "host_step/allgather/packed": Part(5e-4, 3.5e-9),
    "host_step/sharded/int32": Part(2e-3, 1.5e-7),
    "host_step/sharded/rice": Part(2e-3, 2e-7),
    "apply": Part(3e-4, 2e-8),
    "dense_apply": Part(5e-4, 2e-9),
}
