"""``auto`` when the time model cannot tell the best options apart: the
first steps time them in alternation, and every worker keeps the fastest.

:class:`TimedChoice` is an :class:`~..interfaces.Exchange` around the
contending exchanges (all-gather or sharded-exact, with int32, Rice or
packed words: options that give the same update, so the trial changes no
result). Steps ``0 .. C*R - 1`` run contender ``step % C`` (each contender
``R`` = :data:`ROUNDS` times, its first run not counted: buffers are
allocated then); each counted step adds its seconds, from just before this
replica's message is written to the host step's end (the part of the step
that differs between the contenders: codec, collectives, decode and vote),
to the contender's sum. At step ``C*R`` the sums of every host are added
(one small all-reduce, so every worker decides on the same numbers), the
contender with the least time is kept for good, and one line goes to the
log with the measured and the predicted times. Messages of the contenders
differ in length: each replica's words are padded to the longest and cut
back in the host step; the time stamp rides in two more words that never
cross a wire.
"""

from __future__ import annotations

import sys
from typing import Sequence

import tensorflow as tf

from ..interfaces import HostResult, Message, SparseUpdate

#: Runs of each contender during the trial (the first is not counted).
ROUNDS = 4


class TimedChoice:
    """The contenders' exchanges, one chosen by timing (see the module
    docstring).

    Args:
      contenders: the exchanges (:class:`~..interfaces.Exchange`).
      names: their option names (``"allgather/rice"``, ...), for the log.
      predicted: the time model's seconds per step of each, for the log.
      collectives: this host's :class:`~..interfaces.Collectives`.
      variable: ``variable(name, shape, dtype)`` makes a per-replica
        variable that is not saved (the choice is made again after a
        restart).
    """

    def __init__(self, contenders: Sequence, names: Sequence[str],
                 predicted: Sequence[float], collectives, variable):
        self.contenders = list(contenders)
        self.names = list(names)
        self.predicted = [float(p) for p in predicted]
        self.collectives = collectives
        c = len(self.contenders)
        self.gives_back = any(x.gives_back for x in self.contenders)
        self.rule = self.contenders[0].rule
        self.codec = self.contenders[0].codec
        self._sizes = [_size(x.message_shape) for x in self.contenders]
        self.message_shape = (max(self._sizes) + 2,)
        self.trial_steps = c * ROUNDS
        self.step = variable("sparsesign_auto_step", (), "int64")
        self.choice = variable("sparsesign_auto_choice", (), "int32")
        self.seconds = variable("sparsesign_auto_seconds", (c,), "float64")
        self.runs = variable("sparsesign_auto_runs", (c,), "float64")

    def current(self) -> tf.Tensor:
        """The contender this step runs (int32)."""
        step = tf.convert_to_tensor(self.step)
        trial = tf.cast(step % len(self.contenders), tf.int32)
        return tf.where(step < self.trial_steps, trial,
                        tf.convert_to_tensor(self.choice))

    def message(self, codes, values) -> Message:
        with tf.control_dependencies([codes]):
            t0 = tf.timestamp()
        longest = max(self._sizes)

        def branch(x):
            def fn():
                msg = x.message(codes, values)
                words = tf.reshape(msg.words, [-1])
                kept = (tf.ones_like(codes, tf.bool) if msg.kept is None
                        else msg.kept)
                return (tf.pad(words, [[0, longest - tf.size(words)]]),
                        kept)
            return fn

        words, kept = tf.switch_case(
            self.current(), [branch(x) for x in self.contenders])
        stamp = tf.bitcast(t0, tf.int32)
        words = tf.concat([words, stamp], 0)
        return Message(words, kept if self.gives_back else None)

    def host_step(self, local: list) -> HostResult:
        t0 = tf.reduce_min(tf.stack([tf.bitcast(w[-2:], tf.float64)
                                     for w in local]))
        index = self.current()

        def branch(j, x):
            def fn():
                mine = [tf.reshape(w[:self._sizes[j]], x.message_shape)
                        for w in local]
                r = x.host_step(mine)
                return (r.update.indices, r.update.values, r.dropped,
                        r.down_words)
            return fn

        indices, values, dropped, down = tf.switch_case(
            index, [branch(j, x) for j, x in enumerate(self.contenders)])
        with tf.control_dependencies([indices, dropped]):
            elapsed = tf.timestamp() - t0
        self._learn(index, elapsed, local)
        return HostResult(SparseUpdate(indices, values), dropped, down)

    def _learn(self, index, elapsed, local) -> None:
        """Adds a counted trial step's seconds; decides at the trial's
        end; counts the step."""
        step = tf.convert_to_tensor(self.step)
        counted = (step < self.trial_steps) & (step >= len(self.contenders))
        one = tf.one_hot(index, len(self.contenders), dtype=tf.float64)
        with tf.control_dependencies([elapsed]):
            self.seconds.assign_add(tf.where(counted, one * elapsed,
                                             tf.zeros_like(one)))
            self.runs.assign_add(tf.where(counted, one, tf.zeros_like(one)))
        tf.cond(tf.equal(step, self.trial_steps - 1),
                lambda: self._decide(local), lambda: None)
        self.step.assign_add(tf.constant(1, tf.int64))

    def _decide(self, local) -> None:
        """Every host's sums added, the fastest kept, one log line."""
        both = self.collectives.sum(local, tf.concat(
            [tf.convert_to_tensor(self.seconds),
             tf.convert_to_tensor(self.runs)], 0))
        c = len(self.contenders)
        mean = both[:c] / tf.maximum(both[c:], 1.0)
        best = tf.cast(tf.argmin(mean), tf.int32)
        self.choice.assign(best)
        tf.print(tf.strings.format(
            "tf_sparsesign: auto kept exchange {} after timing: " +
            "; ".join(f"{n} {{}} s per step (predicted {p:.3g})"
                      for n, p in zip(self.names, self.predicted)),
            (tf.gather(tf.constant(self.names), best),
             *[mean[j] for j in range(c)])), output_stream=sys.stderr)

    def wire(self, words, down_words) -> tuple:
        index = self.current()
        branches = [
            (lambda x=x, j=j: tuple(tf.cast(v, tf.int64) for v in x.wire(
                tf.reshape(words[:self._sizes[j]], x.message_shape),
                down_words)))
            for j, x in enumerate(self.contenders)]
        return tf.switch_case(index, branches)

    def stats(self) -> dict:
        """``{"auto_exchange": name, "auto_<name>_seconds": measured mean,
        ...}`` once the trial is over (empty before)."""
        from ..state import components

        step = int(components(self.step)[0].numpy())
        if step < self.trial_steps:
            return {}
        seconds = components(self.seconds)[0].numpy()
        runs = components(self.runs)[0].numpy()
        out = {"auto_exchange": self.names[int(
            components(self.choice)[0].numpy())]}
        for name, s, r in zip(self.names, seconds, runs):
            out[f"auto_{name}_seconds"] = float(s / max(r, 1.0))
        return out


def _size(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n
