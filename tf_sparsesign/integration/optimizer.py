"""SparseSignOptimizer: S3GD-MV as a Keras optimizer wrapper."""

from __future__ import annotations

import keras
import tensorflow as tf

from .. import config as config_lib
from ..policy import Density
from . import _patches, keras2, routing
from .wrapping import DelegatesToInner

_BASE_ARGS = ("weight_decay", "clipnorm", "global_clipnorm", "clipvalue",
              "use_ema", "ema_momentum", "ema_overwrite_frequency",
              "loss_scale_factor", "gradient_accumulation_steps")


@config_lib.document
@keras.saving.register_keras_serializable(package="tf_sparsesign")
class SparseSignOptimizer(DelegatesToInner, keras.optimizers.Optimizer):
    """Wraps any Keras optimizer so gradients are aggregated by S3GD-MV.

    Under any ``tf.distribute`` strategy (``MirroredStrategy``,
    ``MultiWorkerMirroredStrategy``, or none), per step on every replica::

        e = memory + g                     # error feedback
        codes = top_k_signs(e, K)          # positions and signs
        memory = e with codes cleared      # what was not sent
        rows = all_gather(codes)           # one collective per step
        g = sign(sum of rows)              # majority vote: -1 / 0 / +1
        optimizer.apply(g)                 # the wrapped optimizer

    With ``keras.optimizers.SGD(learning_rate=lr)`` inside, a step is
    exactly S3GD-MV: ``x <- x - lr * vote``. Clipping and weight decay
    configured on the inner optimizer act on each replica's raw gradient
    before the vote. Below ~3.1% density int32 codes send fewer bits than
    signSGD-MV's one per coordinate (a warning says when they do not).

    Args:
      optimizer: a Keras optimizer instance (or its name or config).
      {{settings}}
      name: optional name.

    Example:

    >>> import keras, tensorflow as tf, tf_sparsesign
    >>> opt = tf_sparsesign.SparseSignOptimizer(
    ...     keras.optimizers.SGD(learning_rate=1e-3), density=0.01)
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> model.compile(optimizer=opt, loss="mse")
    >>> _ = model.fit(tf.ones((8, 4)), tf.zeros((8, 2)), verbose=0)

    Keras 2: given a tf_keras optimizer (``TF_USE_LEGACY_KERAS=1``,
    ``tf.keras.optimizers.SGD(...)``), this returns the tf_keras form of the
    wrapper (same name, same settings; see
    :func:`tf_sparsesign.integration.keras2.wrapper_class`), which tf_keras
    ``compile`` accepts.
    """

    def __new__(cls, optimizer=None, *args, **kwargs):
        if keras2.is_tf_keras_optimizer(optimizer):
            return keras2.wrapper_class()(optimizer, *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, optimizer, density: Density = 0.01, *,
                 name: str | None = None, **settings):
        for arg in _BASE_ARGS:
            value = settings.pop(arg, None)
            if value not in (None, False, 0.99):
                raise ValueError(f"SparseSignOptimizer does not take "
                                 f"`{arg}`; set it on the inner optimizer.")
        config = config_lib.SparseSignConfig.from_settings(
            "SparseSignOptimizer", density, settings)
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            optimizer = keras.optimizers.get(optimizer)
        if isinstance(optimizer, SparseSignOptimizer):
            raise ValueError("SparseSignOptimizer cannot wrap another "
                             "SparseSignOptimizer")
        super().__init__(learning_rate=0.0, name=name)
        self.sparse_sign_config = config
        self.inner_optimizer = optimizer
        routing.install()

    def build(self, var_list):
        if self.built:
            return
        strategy = (tf.distribute.get_strategy()
                    if tf.distribute.has_strategy() else
                    _patches.optimizer_strategy(self.inner_optimizer))
        routing.attach(self.inner_optimizer, self, var_list,
                       self.sparse_sign_config, strategy)
        self.inner_optimizer.build(var_list)
        super().build(var_list)

    @property
    def variables(self):
        return _patches.own_variables(self) + self.inner_optimizer.variables

    def apply(self, grads, trainable_variables=None):
        if not self.built:
            with keras.name_scope(self.name):
                self.build(trainable_variables)
            self.built = True
        self.inner_optimizer.apply(grads, trainable_variables)

    def stateless_apply(self, optimizer_variables, grads, trainable_variables):
        raise ValueError("SparseSignOptimizer needs the TensorFlow backend's "
                         "stateful apply (it votes across replicas)")

    serialize_inner = staticmethod(keras.saving.serialize_keras_object)
    deserialize_inner = staticmethod(keras.saving.deserialize_keras_object)


# tf_keras' load_model must find the tf_keras wrapper by name.
keras2.register_if_in_use()
