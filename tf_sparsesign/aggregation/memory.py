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

    def after_vote(self, update):
        return update

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

    def after_vote(self, update):
        return update

    def commit(self, residuals, after: tf.Tensor) -> None:
        pass


class Tracker:
    """EF21-style (pilot): a shared estimate ``h`` of the gradient; each
    replica sends the top-K signs of ``g - h``, and ``h <- h + step *
    vote``; the update applied is ``h``."""

    keeps_residual = False

    def __init__(self, memories, layout, step: float):
        self._memories = memories
        self._layout = layout
        self._step = float(step)

    def add(self, slot: int, g: tf.Tensor) -> tf.Tensor:
        return g - tf.cast(tf_variable(self._memories[slot]), g.dtype)

    def commit(self, residuals, after: tf.Tensor) -> None:
        pass

    def after_vote(self, update):
        pieces = []
        for slot, memory in enumerate(self._memories):
            start, n = self._layout.offsets[slot], self._layout.sizes[slot]
            piece = tf.reshape(update[start:start + n], memory.shape)
            memory.assign_add(self._step * tf.cast(piece, memory.dtype))
            pieces.append(tf.reshape(tf.cast(tf_variable(memory),
                                             tf.float32), [-1]))
        return tf.concat(pieces, 0)


class MomentumCorrection(ErrorFeedback):
    """DGC momentum correction (pilot): ``u <- beta u + g``, ``e = memory +
    u``; sent entries clear both the memory and ``u``."""

    def __init__(self, memories, factory, beta: float):
        super().__init__(memories)
        self._beta = float(beta)
        self._u = [factory.replica_local(v, "sparsesign_velocity")
                   for v in memories]
        self._pending = {}

    def add(self, slot: int, g: tf.Tensor) -> tf.Tensor:
        u = self._beta * tf.cast(tf_variable(self._u[slot]), g.dtype) + g
        self._pending[slot] = u
        return tf.cast(tf_variable(self._memories[slot]), g.dtype) + u

    def commit(self, residuals, after: tf.Tensor) -> None:
        with tf.control_dependencies([after]):
            for slot, residual in residuals:
                memory = self._memories[slot]
                u = self._pending[slot]
                e = tf.cast(tf_variable(memory), u.dtype) + u
                sent = tf.not_equal(e, 0) & tf.equal(residual, 0)
                memory.assign(tf.cast(residual, memory.dtype))
                self._u[slot].assign(tf.cast(tf.where(sent, 0.0, u),
                                             memory.dtype))


def make(memories, layout=None, tracker_step: float = 0.0, factory=None,
         momentum: float = 0.0):
    """Error feedback when there are memories, else none."""
    if memories and momentum:
        return MomentumCorrection(memories, factory, momentum)
    if memories and tracker_step:
        return Tracker(memories, layout, tracker_step)
    return ErrorFeedback(memories) if memories else NoMemory()
