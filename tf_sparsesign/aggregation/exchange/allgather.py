"""The all-gather exchange: every replica receives every message (one
collective across workers, a stack on one host) and computes the whole vote
itself, once per host."""

from __future__ import annotations

import tensorflow as tf

from ... import policy
from ...constants import PAD_CODE
from ..interfaces import HostResult, Message
from . import ExchangeSetup


class AllGatherExchange:
    """``[fingerprint, codec words]`` per replica; rows ``[M, 1 + W]``."""

    gives_back = False

    def __init__(self, setup: ExchangeSetup):
        self.num_elements = setup.num_elements
        self.num_replicas = setup.num_replicas
        self.codec = setup.codec(setup.num_elements, setup.total_k,
                                 setup.with_values, setup.on_invalid)
        self.rule = setup.rule
        self.frame = setup.frame
        self.collectives = setup.collectives
        self.adversary = setup.adversary
        self.message_shape = (1 + self.codec.words,)

    def message(self, codes, values) -> Message:
        words = self.adversary.corrupt_message(
            self.codec.encode(codes, values), self.codec.name,
            self.num_elements)
        return Message(self.frame.wrap(words), None)

    def host_step(self, local: list) -> HostResult:
        rows = self.collectives.gather(local)
        codes, values, dropped = read(self.frame, self.codec, rows)
        update, malformed = self.rule.combine(codes, values,
                                              self.num_elements)
        if self.rule.learns:
            self.rule.apply(self.rule.observe(codes, update))
        return HostResult(update, dropped + malformed,
                          tf.zeros([], tf.int32))

    def stats(self) -> dict:
        return {}  # fixed when built

    def wire(self, words, down_words) -> tuple:
        return policy.allgather_wire(int(words.shape[-1]),
                                     self.num_replicas)


def read(frame, codec, rows):
    """``(codes, values, dropped)`` of gathered rows: rows with a foreign
    fingerprint or an undecodable message become all padding (they
    abstain)."""
    words, admitted, checks = frame.open(rows)
    with tf.control_dependencies(checks):
        decoded = codec.decode(words)
    usable = admitted & decoded.valid
    codes = tf.where(usable[:, None], decoded.codes, PAD_CODE)
    return codes, decoded.values, tf.reduce_sum(tf.cast(~usable, tf.int32))
