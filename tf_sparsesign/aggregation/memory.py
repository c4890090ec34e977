"""Error feedback: what a replica did not send is added to its next step.

``e_l = memory_l + g_l`` is what gets selected from; the selected entries
are cleared and the rest becomes the new memory. Where the selector can
(top-K signs, memory on the CPU, same dtype as the gradient) this is one
fused op in place on the memory (:func:`tf_sparsesign.ops.
accumulate_encode`): one read of the gradient, one read-modify-write of
the memory. Otherwise the residual is written once every replica's message
has arrived.

A step that fails after the encode (another worker's NaN, a dead peer)
leaves a fused memory holding the gradient and without the entries it sent:
the job restarts from its last backup anyway. On one host a NaN or Inf
gradient on any replica stops the step before any memory is written (the
aggregator orders every encode after every local replica's check).
"""

from __future__ import annotations

import tensorflow as tf

from ..ops.step import scatter_sub
from .state import components, tf_variable


class ErrorFeedback:
    """Memory on (the default): one memory per variable and replica."""

    def __init__(self, memories, selector):
        self._memories = memories
        # Fused where the selector can and the op can reach the memory.
        can = getattr(selector, "select_in_place", None) is not None
        self._fused = [can and all("GPU" not in c.device.upper()
                                   for c in components(m))
                       for m in memories]

    def select(self, selector, slot: int, g, k: int, label: str,
               want_values: bool):
        """``(Selection, pending)``: what to send, and ``(slot, residual)``
        to write after the gather (None when fused)."""
        memory = self._memories[slot]
        if self._fused[slot] and tf.as_dtype(memory.dtype) == g.dtype:
            return selector.select_in_place(memory, g, k, label,
                                            want_values), None
        e = tf.cast(tf_variable(memory), g.dtype) + g
        chosen = selector.select(e, k, slot, True, want_values)
        return chosen, (slot, chosen.residual)

    def accumulated(self, slot: int, g):
        """``memory + g``: what this step selects from (read it before
        :meth:`select`, which may clear the memory in place)."""
        return tf.cast(tf_variable(self._memories[slot]), g.dtype) + g

    def give_back(self, slot: int, local, values, pending: dict) -> None:
        """Selected entries that were not sent (flat indices ``local`` of
        variable ``slot``) return to the memory with their values."""
        memory = self._memories[slot]
        index = local[:, None]
        if slot in pending:  # not written yet: fix the residual
            residual = pending[slot]
            pending[slot] = tf.reshape(tf.tensor_scatter_nd_update(
                tf.reshape(residual, [-1]), index,
                tf.cast(values, residual.dtype)), tf.shape(residual))
        else:  # fused: written in place, these entries cleared to 0
            # 0 - (-v) is v exactly; TF's scatter update would instead
            # switch the memory to copy-on-read (every later read and
            # in-place encode of it would copy it whole)
            scatter_sub(tf_variable(memory), local,
                        -tf.cast(values, memory.dtype))

    def commit(self, pending: dict, after) -> None:
        """Writes the residuals once ``after`` (the gathered step) exists."""
        with tf.control_dependencies([after]):
            for slot, residual in pending.items():
                memory = self._memories[slot]
                memory.assign(tf.cast(residual, memory.dtype))


class NoMemory:
    """Memory off: the raw gradient is sparsified, the rest is dropped."""

    def select(self, selector, slot: int, g, k: int, label: str,
               want_values: bool):
        return selector.select(g, k, slot, False, want_values), None

    def accumulated(self, slot: int, g):
        """The raw gradient (nothing is accumulated)."""
        return g

    def give_back(self, slot: int, local, values, pending: dict) -> None:
        pass  # no memory: what was not sent is dropped, like the rest

    def commit(self, pending: dict, after) -> None:
        pass


def make(memories, selector) -> ErrorFeedback | NoMemory:
    """Error feedback when there are memories, else none."""
    return ErrorFeedback(memories, selector) if memories else NoMemory()
