"""Where a misbehaving replica can lie, for robustness experiments.

The aggregation calls an *adversary* at the points a replica could send
something other than the truth; by default :data:`HONEST`, which changes
nothing. An experiment passes its own object with the same three methods
(``tf_sparsesign.experiments.Adversary`` is one); the library never
imports experiment code.
"""

from __future__ import annotations


class Honest:
    """The default adversary hook: every replica sends what it computed."""

    def corrupt_selection(self, codes, values, num_elements: int):
        """The step's codes (global index space) and values, as sent."""
        return codes, values

    def corrupt_message(self, words, codec: str, num_elements: int):
        """The coded message words (``codec`` is the codec's name)."""
        return words

    def corrupt_gradients(self, grads):
        """Dense gradients (the dense baseline)."""
        return grads


HONEST = Honest()
