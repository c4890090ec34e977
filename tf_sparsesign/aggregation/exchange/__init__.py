"""Exchanges: how the replicas' selections become one update — the middle
of the step (message -> gather -> decode -> combine), the
:class:`~tf_sparsesign.aggregation.interfaces.Exchange` contract.

An exchange is built once from an :class:`ExchangeSetup` (everything it
needs, settings bound) and does per step::

    message(codes, values) -> Message
        replica context: this replica's message (codec words behind the
        settings fingerprint) from its selected codes (global index space)
        and values; ``Message.kept`` marks the codes it carries (None: all).
    host_step(local) -> HostResult
        cross-replica context, once per host: this host's replicas' message
        words in (a list), the step's update out; the collectives
        (:mod:`.collectives`) are bound, so a test or a timing run passes
        M messages and gets the real decode and vote without a network.
    wire(words, down_words) -> (own, sent, received)
        this replica's bytes for the counters, from the messages' sizes, by
        the exchange's byte model in :mod:`tf_sparsesign.policy.exchange`
        (the same function ``plan`` uses).

* :mod:`.allgather` — everyone gets every message and votes itself.
* :mod:`.sharded` — each worker owns the coordinates ``i mod M``, receives
  everyone's codes for them (one all-to-all), votes them, and returns the
  result (one all-gather): traffic flat in the number of workers.

Adding an exchange: one file here, its line in
:data:`tf_sparsesign.aggregation.registry.EXCHANGES` (what it can carry) and
its byte model in :data:`tf_sparsesign.policy.exchange.BYTE_MODELS`
(docs/ARCHITECTURE.md works through a hierarchical all-gather).
"""

from __future__ import annotations

from typing import NamedTuple

from ..adversary_hook import HONEST


class ExchangeSetup(NamedTuple):
    """What an exchange is built with (all fixed when the optimizer is
    built).

    Attributes:
      num_elements: N, the step's global index space.
      total_k: codes per replica per step (sum of K).
      num_replicas: M, replicas in sync.
      codec: the codec class (:data:`..registry.CODECS`), built by the
        exchange for its own message sizes.
      with_values: messages carry values (``topk_values``).
      on_invalid: ``"raise"`` or ``"drop"``.
      rule: the :class:`~..interfaces.VoteRule`.
      frame: the :class:`~..framing.SettingsFrame`.
      collectives: the :class:`~..interfaces.Collectives`.
      downlink: ``"exact"`` or ``"topk"`` (sharded).
      shard_capacity: bucket capacity factor (sharded).
      adversary: the :class:`~..interfaces.Adversary` hook.
    """

    num_elements: int
    total_k: int
    num_replicas: int
    codec: type
    with_values: bool
    on_invalid: str
    rule: object
    frame: object
    collectives: object
    downlink: str = "exact"
    shard_capacity: float = 1.25
    adversary: object = HONEST
