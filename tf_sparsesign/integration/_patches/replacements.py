"""The guarded replacements of Keras methods (see the package docstring)."""

from __future__ import annotations

import functools
import threading
import warnings

import tensorflow as tf

from . import accumulation

KERAS_SUPPORTED = ((3, 5), (4, 0))
TESTED_KERAS = "3.15"

_TF_OPT = "keras.src.backend.tensorflow.optimizer"
_BASE_OPT = "keras.src.optimizers.base_optimizer"
_TRAINER = "keras.src.backend.tensorflow.trainer"
#: (module, class, attribute) of everything :func:`install` replaces.
TARGETS = (
    (_TF_OPT, "TFOptimizer", "_all_reduce_sum_gradients"),
    (_BASE_OPT, "BaseOptimizer", "build"),
    (_BASE_OPT, "BaseOptimizer", "_backend_apply_gradients"),
    (_BASE_OPT, "BaseOptimizer", "save_own_variables"),
    (_BASE_OPT, "BaseOptimizer", "load_own_variables"),
    (_TRAINER, "TensorFlowTrainer", "make_train_function"),
)
#: Private methods only called (gradient accumulation, :mod:`.accumulation`),
#: checked to exist at install like :data:`TARGETS`.
CALLED = (
    (_BASE_OPT, "BaseOptimizer", "_clip_gradients"),
    (_BASE_OPT, "BaseOptimizer", "_use_weight_decay"),
    (_TF_OPT, "TFOptimizer", "_distributed_tf_update_step"),
)

_lock = threading.Lock()
_installed = False


def supported_range(supported=KERAS_SUPPORTED, tested=TESTED_KERAS) -> str:
    (a, b), (c, d) = supported
    return f">={a}.{b}, <{c}.{d} (tested with {tested})"


def check_keras_version(version: str | None = None) -> None:
    """Raises RuntimeError unless ``version`` (default: the installed
    Keras) is in :data:`KERAS_SUPPORTED`."""
    if version is None:
        import keras

        version = keras.__version__
    if not version_in(version, KERAS_SUPPORTED):
        raise RuntimeError(
            f"tf_sparsesign: Keras {version} is not supported; supported: "
            f"Keras {supported_range()}. (Keras 2 users: tf_keras with "
            "TF_USE_LEGACY_KERAS=1.)")


def version_in(version: str, supported) -> bool:
    """``version``'s (major, minor) lies in ``supported`` = [first, last)."""
    try:
        found = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        return False
    return supported[0] <= found < supported[1]


def resolve(targets=TARGETS, framework: str | None = None,
            supported: str | None = None) -> dict:
    """``{(module, class, attribute): (class, original)}``; a missing one
    is a RuntimeError naming it (checked before anything is replaced).
    ``framework`` ("Keras <version>") and ``supported`` (the range) go into
    the message; default: the installed Keras 3 and its range."""
    import importlib

    if framework is None:
        import keras

        framework = f"Keras {keras.__version__}"
    found = {}
    for module, cls_name, attr in targets:
        try:
            cls = getattr(importlib.import_module(module), cls_name)
            found[(module, cls_name, attr)] = (cls, getattr(cls, attr))
        except (ImportError, AttributeError) as exc:
            raise RuntimeError(
                f"tf_sparsesign: {framework} has no "
                f"{module}.{cls_name}.{attr} ({exc}); the sparse-sign vote "
                "cannot be routed into it. Supported: "
                f"{supported or 'Keras ' + supported_range()}.") from exc
    return found


def install(routes) -> None:
    """Replaces :data:`TARGETS` once per process (idempotent).

    ``routes`` (:mod:`.routing`) decides what optimizers do:
    ``on_build(optimizer, variables)``, ``own_aggregator(optimizer)`` (the
    aggregator whose state ``optimizer`` saves), ``votes(optimizer)``,
    ``check_finite(grads, variables)`` and ``JIT_WARNING``.
    """
    global _installed
    with _lock:
        if _installed:
            return
        check_keras_version()
        found = resolve()
        resolve(CALLED)
        for (_, _, attr), (cls, original) in found.items():
            setattr(cls, attr, functools.wraps(original)(
                _REPLACEMENTS[attr](original, routes)))
        _installed = True


# -- the replacements (each gets the original and the routes) --------------

def _build(original, routes):
    def build(self, variables):
        original(self, variables)
        # Wrappers (SparseSignOptimizer, LossScaleOptimizer) delegate to
        # their inner optimizer, which gets the aggregator instead.
        if (_attached(self) is None and
                not hasattr(self, "inner_optimizer")):
            routes.on_build(self, variables)
    return build


def _all_reduce_sum_gradients(original, routes):
    def all_reduce_sum_gradients(self, grads_and_vars):
        agg = _attached(self)
        if agg is None:
            return original(self, grads_and_vars)
        agg.routed_calls += 1
        return agg.aggregate(grads_and_vars)
    return all_reduce_sum_gradients


def _backend_apply_gradients(original, routes):
    def backend_apply_gradients(self, grads, trainable_variables):
        agg = _attached(self)
        if agg is None:
            return original(self, grads, trainable_variables)
        checked, checks = routes.check_finite(grads, trainable_variables)
        before = agg.routed_calls
        with tf.control_dependencies(checks):
            if self.gradient_accumulation_steps:  # vote every A-th step
                result = accumulation.apply(self, agg, checked,
                                            trainable_variables)
            else:
                result = original(self, checked, trainable_variables)
        if agg.routed_calls == before:
            import keras

            raise RuntimeError(
                f"tf_sparsesign: Keras {keras.__version__} applied gradients "
                "without calling TFOptimizer._all_reduce_sum_gradients, so "
                "this step would have trained with the dense all-reduce. "
                f"Supported: Keras {supported_range()}.")
        return result
    return backend_apply_gradients


def save_own_variables_replacement(original, routes):
    """``save_own_variables`` that adds every replica's memory (Keras 3
    and tf_keras alike)."""
    def save_own_variables(self, store):
        original(self, store)
        agg = routes.own_aggregator(self)
        if agg is not None:
            from ...aggregation import state

            state.save_to_store(agg.state, store)
    return save_own_variables


def load_own_variables_replacement(original, routes):
    """``load_own_variables`` that restores what
    :func:`save_own_variables_replacement` added."""
    def load_own_variables(self, store):
        agg = routes.own_aggregator(self)
        if agg is None:
            return original(self, store)
        from ...aggregation import state

        original(self, state.without_our_keys(store))
        state.load_from_store(agg.state, store)
    return load_own_variables


def _make_train_function(original, routes):
    def make_train_function(self, force=False):
        if self.jit_compile and getattr(self, "optimizer", None) is not None \
                and routes.votes(self.optimizer):
            warnings.warn(routes.JIT_WARNING, UserWarning, stacklevel=2)
            self.jit_compile = False
        return original(self, force)
    return make_train_function


_REPLACEMENTS = {
    "_all_reduce_sum_gradients": _all_reduce_sum_gradients,
    "build": _build,
    "_backend_apply_gradients": _backend_apply_gradients,
    "save_own_variables": save_own_variables_replacement,
    "load_own_variables": load_own_variables_replacement,
    "make_train_function": _make_train_function,
}

AGGREGATOR_ATTR = "_sparsesign_aggregator"


def _attached(optimizer):
    return getattr(optimizer, AGGREGATOR_ATTR, None)


def attach(optimizer, aggregator) -> None:
    """Makes ``optimizer`` aggregate with ``aggregator``. ``object.
    __setattr__`` keeps Keras' automatic tracking out of it (the variables
    are tracked by the optimizer that created them)."""
    object.__setattr__(optimizer, AGGREGATOR_ATTR, aggregator)
