"""What both optimizer wrappers (Keras 3 and tf_keras) hand to the
optimizer they wrap: the step counter, the learning rate, the final values
(EMA), and where the aggregation is; and their shared config (the inner
optimizer serialized by the wrapper's own Keras)."""

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

    #: The wrapper's Keras (de)serializer of the inner optimizer; each
    #: wrapper class sets both (Keras 3 or tf_keras).
    serialize_inner = None
    deserialize_inner = None

    def get_config(self):
        return {"name": self.name,
                "optimizer": self.serialize_inner(self.inner_optimizer),
                **self.sparse_sign_config.to_dict()}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        inner = cls.deserialize_inner(config.pop("optimizer"),
                                      custom_objects=custom_objects)
        return cls(inner, **config)
