"""Error feedback: what a replica did not send is added to its next step.

The memory owns the whole concern, per step (:meth:`ErrorFeedback.begin`
gives one :class:`~.interfaces.MemoryStep`): it selects (``e = memory + g``
is what gets selected from), gives back what the exchange could not send,
and writes the residual once the step's update exists. Where the selector
can (top-K signs, memory where the fused op runs, same dtype as the
gradient) the select is one fused op in place on the memory
(:func:`tf_sparsesign.ops.accumulate_encode`): one read of the gradient,
one read-modify-write of the memory. Otherwise the residual waits for the
commit.

A step that fails after the encode (another worker's NaN, a dead peer)
leaves a fused memory holding the gradient and without the entries it sent:
the job restarts from its last backup anyway. On one host a NaN or Inf
gradient on any replica stops the step before any memory is written (the
aggregator orders every encode after every local replica's check).
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from .. import ops
from ..ops.step import scatter_sub
from .interfaces import Selection
from .state import components, tf_variable


def fusable(memory) -> bool:
    """The fused encode can work in place on every replica's component of
    ``memory`` (the CPU kernel; a GPU's when the library has GPU kernels:
    :func:`tf_sparsesign.ops.fused_encode_supported`)."""
    return all(ops.fused_encode_supported(c.device)
               for c in components(memory))


class SelectionsStep:
    """What every memory's step shares: the selections made, in order
    (``chosen``: ``(index, Selection)``), and giving back the codes the
    exchange did not carry."""

    def __init__(self):
        self.chosen: list[tuple[int, Selection]] = []

    def give_back(self, kept) -> tf.Tensor:
        if kept is None:
            return tf.zeros([], tf.int64)
        start, lost_total = 0, []
        for index, chosen in self.chosen:
            k = int(chosen.codes.shape[0])
            lost = ~kept[start:start + k] & (chosen.codes >= 0)
            start += k
            self.restore(index, tf.boolean_mask(chosen.codes, lost) // 2,
                         tf.boolean_mask(chosen.values, lost))
            lost_total.append(tf.reduce_sum(tf.cast(lost, tf.int64)))
        return tf.add_n(lost_total) if lost_total else tf.zeros([], tf.int64)

    def restore(self, index: int, local, values) -> None:
        """Puts ``values`` back into the memory at flat indices ``local``
        of variable ``index`` (entries selected but not sent; without a
        memory they are dropped)."""


class ErrorFeedbackStep(SelectionsStep):
    """One step of :class:`ErrorFeedback`."""

    def __init__(self, memory: "ErrorFeedback"):
        super().__init__()
        self.memory = memory
        self.pending: dict[int, tf.Tensor] = {}  # residuals to write

    def select(self, index: int, g) -> Selection:
        m = self.memory
        var = m.memories[index]
        if m.fused[index] and tf.as_dtype(var.dtype) == g.dtype:
            chosen = m.selector.select_in_place(var, g, m.ks[index],
                                                m.labels[index])
        else:
            e = tf.cast(tf_variable(var), g.dtype) + g
            chosen = m.selector.select(e, m.ks[index], index, True)
            self.pending[index] = chosen.residual
        self.chosen.append((index, chosen))
        return chosen

    def accumulated(self, index: int, g):
        return tf.cast(tf_variable(self.memory.memories[index]),
                       g.dtype) + g

    def restore(self, index: int, local, values) -> None:
        var = self.memory.memories[index]
        if index in self.pending:  # not written yet: fix the residual
            residual = self.pending[index]
            self.pending[index] = tf.reshape(tf.tensor_scatter_nd_update(
                tf.reshape(residual, [-1]), local[:, None],
                tf.cast(values, residual.dtype)), tf.shape(residual))
        else:  # fused: written in place, these entries cleared to 0
            # 0 - (-v) is v exactly; TF's scatter update would instead
            # switch the memory to copy-on-read (every later read and
            # in-place encode of it would copy it whole)
            scatter_sub(tf_variable(var), local, -tf.cast(values, var.dtype))

    def commit(self, after) -> None:
        with tf.control_dependencies([after]):
            for index, residual in self.pending.items():
                var = self.memory.memories[index]
                var.assign(tf.cast(residual, var.dtype))


class ErrorFeedback:
    """Memory on (the default): one memory per variable and replica.

    Args:
      memories: the memory variables, one per variable (layout order).
      selector: the :class:`~.interfaces.Selector`.
      ks: entries each variable sends per step.
      labels: variable names for error messages.
      fused: per variable, whether the fused in-place encode may run
        (``selector.in_place`` and :func:`fusable`).
    """

    def __init__(self, memories: Sequence, selector, ks: Sequence[int],
                 labels: Sequence[str], fused: Sequence[bool]):
        self.memories = list(memories)
        self.selector = selector
        self.ks = list(ks)
        self.labels = list(labels)
        self.fused = list(fused)

    def begin(self) -> ErrorFeedbackStep:
        return ErrorFeedbackStep(self)


class NoMemoryStep(SelectionsStep):
    """One step of :class:`NoMemory`."""

    def __init__(self, memory: "NoMemory"):
        super().__init__()
        self.memory = memory

    def select(self, index: int, g) -> Selection:
        chosen = self.memory.selector.select(g, self.memory.ks[index], index,
                                             False)
        self.chosen.append((index, chosen))
        return chosen

    def accumulated(self, index: int, g):
        return g  # nothing is accumulated

    def commit(self, after) -> None:
        pass  # no memory: what was not sent is dropped, like the rest


class NoMemory:
    """Memory off: the raw gradient is sparsified, the rest is dropped
    (codes an exchange could not send too; they are still counted)."""

    def __init__(self, selector, ks: Sequence[int]):
        self.selector = selector
        self.ks = list(ks)

    def begin(self) -> NoMemoryStep:
        return NoMemoryStep(self)


def make(memories, selector, ks, labels):
    """Error feedback when there are memories (fused where the selector and
    the memory's device allow), else none."""
    if not memories:
        return NoMemory(selector, ks)
    fused = [selector.in_place and fusable(m) for m in memories]
    return ErrorFeedback(memories, selector, ks, labels, fused)
