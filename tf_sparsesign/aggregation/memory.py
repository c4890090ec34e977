"""Error feedback: what a replica did not send is added to its next step.

``e_l = memory_l + g_l`` is what gets selected from; the selected entries
are cleared and the rest becomes the new memory. Memories are written only
after every replica's message has arrived, so a step that fails anywhere (a
NaN on one replica, a dead peer) leaves every memory untouched.
"""

from __future__ import annotations

import tensorflow as tf

from .state import tf_variable


class ErrorFeedback:
    """Memory on (the default): one memory per variable and replica."""

    keeps_residual = True

    def __init__(self, memories):
        self._memories = memories

    def add(self, slot: int, g: tf.Tensor) -> tf.Tensor:
        """``e = memory + g`` (in the gradient's dtype)."""
        return tf.cast(tf_variable(self._memories[slot]), g.dtype) + g

    def commit(self, residuals, after: tf.Tensor) -> None:
        """Writes ``(slot, residual)`` pairs once ``after`` exists."""
        with tf.control_dependencies([after]):
            for slot, residual in residuals:
                memory = self._memories[slot]
                memory.assign(tf.cast(residual, memory.dtype))


class NoMemory:
    """Memory off: the raw gradient is sparsified, the rest is dropped."""

    keeps_residual = False

    def add(self, slot: int, g: tf.Tensor) -> tf.Tensor:
        return g

    def commit(self, residuals, after: tf.Tensor) -> None:
        pass


def make(memories) -> ErrorFeedback | NoMemory:
    """Error feedback when there are memories, else none."""
    return ErrorFeedback(memories) if memories else NoMemory()
