"""Where a misbehaving replica can lie, for robustness experiments.

The aggregation calls an *adversary* (the
:class:`~tf_sparsesign.aggregation.interfaces.Adversary` contract) at the
points a replica could send something other than the truth; by default
:data:`HONEST`, which changes nothing. An experiment passes its own object with the same methods
(``tf_sparsesign.experiments.Adversary`` is one); the library never
imports experiment code.

The hook:

* ``bind(message_codes) -> hook`` — called once when the
  aggregation is built, inside the strategy's scope, with the number of
  codes a replica sends per step (the sum of K; 0 for the dense
  baseline). Returns the object the aggregation calls from then on; an
  adversary that keeps state between steps (a step counter, a buffer of
  delayed messages) creates its variables here.
* ``needs_dense`` (attribute) — True when
  ``corrupt_selection`` reads ``dense``; only then does the aggregation
  read the error-feedback memories for it (before the encode clears the
  entries it selects).
* ``corrupt_selection(codes, values, num_elements, dense)`` — the step's
  codes (int32 ``[k]``, global index space; signSGD-MV's every-sign
  selection keeps ``-1`` in place of zero entries), values (float32
  ``[k]`` or None) as sent. ``dense`` (None unless ``needs_dense``) is a
  zero-argument callable returning this replica's error-accumulated
  gradient in the global index space (float32 ``[num_elements]``).
* ``corrupt_message(words, codec, num_elements)`` — the coded words
  (``[words]`` for the all-gather exchange, ``[M, words]`` buckets for
  the sharded one, whose ``num_elements`` is a shard's size); called
  once per step and replica, after ``corrupt_selection``.
* ``corrupt_gradients(grads)`` — dense gradients (the dense baseline).
"""

from __future__ import annotations

import tensorflow as tf


class Honest:
    """The default adversary hook: every replica sends what it computed."""

    needs_dense = False

    def bind(self, message_codes: int) -> "Honest":
        """Nothing to create: the hook itself."""
        return self

    def corrupt_selection(self, codes, values, num_elements: int,
                          dense=None):
        """The step's codes (global index space) and values, as sent."""
        return codes, values

    def corrupt_message(self, words, codec: str, num_elements: int):
        """The coded message words (``codec`` is the codec's name)."""
        return words

    def corrupt_gradients(self, grads):
        """Dense gradients (the dense baseline)."""
        return grads


HONEST = Honest()


def bind(adversary, message_codes: int):
    """``adversary.bind(message_codes)`` (the hook the aggregation calls
    from then on); :data:`HONEST` for None."""
    adversary = HONEST if adversary is None else adversary
    return adversary.bind(int(message_codes))


def dense_view(sizes, pieces: dict):
    """A zero-argument callable: the variables' ``pieces`` (index -> tensor)
    laid end to end in the global index space as float32, zeros for slots
    without a piece."""
    def build():
        return tf.concat([
            tf.cast(tf.reshape(pieces[index], [-1]), tf.float32)
            if index in pieces else tf.zeros([n], tf.float32)
            for index, n in enumerate(sizes)], 0)
    return build
