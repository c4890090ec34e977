"""Every private tf_keras (Keras 2) name this package touches, in one place.

tf_keras has a *documented* aggregation hook: ``Optimizer.aggregate_gradients
(grads_and_vars)`` ("users can implement their own aggregation logic by
overriding this method"), called by ``Optimizer.apply_gradients`` and by
``LossScaleOptimizer`` (mixed precision) in replica context. The
:class:`~tf_sparsesign.SparseSignOptimizer` wrapper for tf_keras overrides it
in its own class and needs nothing here. Optimizers that the user builds
under a sparse-sign *strategy* are the user's own classes, so for them
:func:`install` replaces, process-wide, with versions that behave exactly as
before for every optimizer that does not vote:

* ``Optimizer.aggregate_gradients`` — vote instead of the SUM (an optimizer
  under a sparse-sign strategy gets its aggregator here if it was not built
  yet: tf_keras aggregates before it builds);
* ``Optimizer.apply_gradients`` — fail if the gradients of a voting
  optimizer were applied without passing through the vote;
* ``_BaseOptimizer.build`` — optimizers built under a sparse-sign strategy
  get their aggregator (also when a saved model is loaded);
* ``_BaseOptimizer.save_own_variables`` / ``load_own_variables`` — every
  replica's memory in ``.keras`` and ``.weights.h5`` files;
* ``legacy.OptimizerV2._aggregate_gradients`` — the legacy optimizers
  (``tf_keras.optimizers.legacy.*``) do not vote: under a sparse-sign
  strategy they fail at the first step instead of training dense.

``CommunicationLogger`` (a Keras 3 callback) gets the three
``_implements_*_batch_hooks`` methods tf_keras' ``CallbackList`` calls
(:func:`adapt_callback`).

Private names only read: ``optimizer._var_key`` (replica component →
variable), ``._variables`` (counters are saved with the optimizer's own
variables), ``._distribution_strategy``.

Guards: an unsupported tf_keras fails at install with the version found and
the supported range; every target is checked to exist before anything is
replaced; a voting optimizer whose gradients reach ``apply_gradients``
without the vote raises instead of silently training dense.
"""

from __future__ import annotations

import functools
import importlib
import threading

from . import replacements as _patches
# tf_keras reads the same private names as Keras 3 for these two.
from .names import optimizer_strategy, var_key  # noqa: F401

#: Supported tf_keras versions: [first, last) — tested with TESTED_TF_KERAS.
TF_KERAS_SUPPORTED = ((2, 16), (3, 0))
TESTED_TF_KERAS = "2.21"

_OPT = "tf_keras.src.optimizers.optimizer"
_LEGACY = "tf_keras.src.optimizers.legacy.optimizer_v2"
#: (module, class, attribute) of everything :func:`install` replaces.
TARGETS = (
    (_OPT, "Optimizer", "aggregate_gradients"),
    (_OPT, "Optimizer", "apply_gradients"),
    (_OPT, "_BaseOptimizer", "build"),
    (_OPT, "_BaseOptimizer", "save_own_variables"),
    (_OPT, "_BaseOptimizer", "load_own_variables"),
    (_LEGACY, "OptimizerV2", "_aggregate_gradients"),
)
#: Private names read (checked to exist with the targets).
READ = ((_OPT, "Optimizer", "_var_key"),)

_lock = threading.Lock()
_installed = False


def supported_range() -> str:
    return _patches.supported_range(TF_KERAS_SUPPORTED, TESTED_TF_KERAS)


def check_version(version: str | None = None) -> None:
    """Raises RuntimeError unless ``version`` (default: the installed
    tf_keras) is in :data:`TF_KERAS_SUPPORTED`."""
    if version is None:
        version = importlib.import_module("tf_keras").__version__
    if not _patches.version_in(version, TF_KERAS_SUPPORTED):
        raise RuntimeError(
            f"tf_sparsesign: tf_keras {version} is not supported; supported: "
            f"tf_keras {supported_range()}.")


def resolve(targets=TARGETS + READ) -> dict:
    """``{(module, class, attribute): (class, original)}``; a missing one is
    a RuntimeError naming it (checked before anything is replaced)."""
    version = importlib.import_module("tf_keras").__version__
    return _patches.resolve(targets, f"tf_keras {version}",
                            f"tf_keras {supported_range()}")


def installed() -> bool:
    return _installed


def install(routes) -> None:
    """Replaces :data:`TARGETS` once per process (idempotent).

    ``routes`` (:mod:`.keras2`) decides: ``aggregate(optimizer,
    grads_and_vars)`` (None: not voting), ``on_build(optimizer, variables)``,
    ``own_aggregator(optimizer)``, ``routed(optimizer)`` (a trace-time count
    of votes), ``votes(optimizer)`` and ``under_sparse_strategy(optimizer)``.
    """
    global _installed
    with _lock:
        if _installed:
            return
        check_version()
        found = resolve()
        for (_, _, attr), (cls, original) in found.items():
            if attr in _REPLACEMENTS:
                setattr(cls, attr, functools.wraps(original)(
                    _REPLACEMENTS[attr](original, routes)))
        _installed = True


# -- the replacements (each gets the original and the routes) --------------

def _aggregate_gradients(original, routes):
    def aggregate_gradients(self, grads_and_vars):
        voted = routes.aggregate(self, grads_and_vars)
        return original(self, grads_and_vars) if voted is None else voted
    return aggregate_gradients


def _apply_gradients(original, routes):
    def apply_gradients(self, grads_and_vars, name=None,
                        skip_gradients_aggregation=False, **kwargs):
        aggregate = (not skip_gradients_aggregation and
                     kwargs.get("experimental_aggregate_gradients", True))
        before = routes.routed(self)
        result = original(self, grads_and_vars, name=name,
                          skip_gradients_aggregation=skip_gradients_aggregation,
                          **kwargs)
        if aggregate and routes.votes(self) and routes.routed(self) == before:
            import tf_keras

            raise RuntimeError(
                f"tf_sparsesign: tf_keras {tf_keras.__version__} applied "
                "gradients without calling Optimizer.aggregate_gradients, so "
                "this step would have trained with the dense all-reduce. "
                f"Supported: tf_keras {supported_range()}.")
        return result
    return apply_gradients


def _build(original, routes):
    def build(self, var_list):
        original(self, var_list)
        if not hasattr(self, "inner_optimizer"):  # wrappers: the inner one
            routes.on_build(self, var_list)
    return build


def _legacy_aggregate_gradients(original, routes):
    def legacy_aggregate_gradients(self, grads_and_vars):
        if routes.under_sparse_strategy(self):
            raise RuntimeError(
                f"tf_sparsesign: the legacy tf_keras optimizer "
                f"{type(self).__name__} (tf_keras.optimizers.legacy) does "
                "not vote; under a sparse-sign strategy use the default "
                "optimizers, e.g. tf.keras.optimizers.SGD.")
        return original(self, grads_and_vars)
    return legacy_aggregate_gradients


_REPLACEMENTS = {
    "aggregate_gradients": _aggregate_gradients,
    "apply_gradients": _apply_gradients,
    "build": _build,
    # the same as for Keras 3: every replica's memory under its own key
    "save_own_variables": _patches.save_own_variables_replacement,
    "load_own_variables": _patches.load_own_variables_replacement,
    "_aggregate_gradients": _legacy_aggregate_gradients,
}


# -- private names read -----------------------------------------------------

def own_variables(optimizer) -> list:
    """The optimizer's own variables, without any wrapped optimizer's."""
    return list(optimizer._variables)


def adapt_callback(cls) -> None:
    """Lets the Keras 3 callback class ``cls`` (CommunicationLogger) run in
    tf_keras ``fit``, whose ``CallbackList`` asks every callback which
    batch hooks it implements: training batches with
    ``update_freq="batch"``, nothing else."""
    cls._implements_train_batch_hooks = \
        lambda self: getattr(self, "update_freq", "batch") == "batch"
    cls._implements_test_batch_hooks = lambda self: False
    cls._implements_predict_batch_hooks = lambda self: False


def track_variable(optimizer, variable) -> None:
    """Makes ``variable`` one of the optimizer's own (saved with them)."""
    optimizer._variables.append(variable)
