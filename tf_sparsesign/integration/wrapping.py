"""What both optimizer wrappers (Keras 3 and tf_keras) hand to the
optimizer they wrap: the step counter, the learning rate, the final values
(EMA), and where the aggregation is."""

from __future__ import annotations

from . import routing


class DelegatesToInner:
    """Mixin for a wrapper holding ``inner_optimizer``: these read and
    write the inner optimizer's, so schedules, callbacks and checkpoints
    see one counter and one learning rate."""

    @property
    def aggregator(self):
        """The aggregation (its ``state`` holds the memories and counters);
        None before build."""
        return routing.aggregator_of(self)

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)
