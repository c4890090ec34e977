"""The all-gather exchange: every replica receives every message (one
collective across workers, a stack on one host) and computes the whole vote
itself, once per host."""

from __future__ import annotations

import tensorflow as tf

from ...constants import PAD_CODE
from .. import registry
from ..adversary_hook import HONEST


class AllGatherExchange:
    """``[fingerprint, codec words]`` per replica; rows ``[M, 1 + W]``."""

    def __init__(self, config, layout, state, ks, parts, combiner, frame,
                 collectives):
        n, k = layout.total, sum(ks)
        self.config = config
        self.num_elements = n
        self.codec = registry.load(parts.codec)(
            n, k, registry.sends_values(config.method))
        self.combiner = combiner
        self.frame = frame
        self.collectives = collectives
        self.num_replicas = state.num_replicas

    def message(self, codes, values, adversary=HONEST):
        words = adversary.corrupt_message(self.codec.encode(codes, values),
                                          self.codec.name, self.num_elements)
        return self.frame.wrap(words), None

    def host_step(self, strategy, message):
        local = list(strategy.experimental_local_results(message))
        rows = self.collectives.gather(strategy, local)
        codes, values, dropped = decode(self.frame, self.codec, rows,
                                        self.config.on_invalid)
        update, malformed = self.combiner.combine(
            codes, values, self.num_elements, self.config.on_invalid)
        observe_and_apply(self.combiner, codes, update)
        return update, dropped + malformed, tf.zeros([], tf.int32)

    def wire(self, message, down_words):
        own = 4 * int(message.shape[-1])
        others = own * (self.num_replicas - 1)
        return own, others, others


def decode(frame, codec, rows, on_invalid):
    """``(codes, values, dropped)``: rows with a foreign fingerprint or an
    undecodable message become all padding (they abstain)."""
    words, admitted, checks = frame.open(rows)
    with tf.control_dependencies(checks):
        decoded = codec.decode(words, on_invalid)
    usable = admitted & decoded.valid
    codes = tf.where(usable[:, None], decoded.codes, PAD_CODE)
    return codes, decoded.values, tf.reduce_sum(tf.cast(~usable, tf.int32))


def observe_and_apply(combiner, codes, update) -> None:
    """A rule that learns from the vote learns from this one."""
    if hasattr(combiner, "observe"):
        combiner.apply(combiner.observe(codes, update))
