"""Which Keras optimizers vote, and with what aggregator (Keras 3 and
tf_keras alike).

An optimizer votes when it has an aggregator attached: optimizers built
under a sparse-sign strategy get one in ``build``; a
:class:`~tf_sparsesign.SparseSignOptimizer` attaches one to its inner
optimizer. :func:`install` routes Keras 3 to these decisions through the
guarded replacements in :mod:`._patches` (the only module that touches
private Keras 3 names); :mod:`.keras2` routes tf_keras to the same ones.
"""

from __future__ import annotations

import sys

import tensorflow as tf

from ..aggregation import state as state_lib
from ..aggregation.apply import strategy_writer
from ..aggregation.build import build_aggregator
from ..aggregation.exchange.collectives import HostCollectives
from ..config import SparseSignConfig
from ..ops import step as step_ops
from . import _patches, state_factory

JIT_WARNING = (
    "tf_sparsesign: jit_compile=True is not supported with the sparse-sign "
    "vote (its ops have no XLA kernels, and XLA fails for multi-replica CPU "
    "training upstream even for dense all-reduce). Proceeding with "
    "jit_compile=False.")


def install() -> None:
    """Routes Keras' gradient aggregation here (once per process)."""
    _patches.install(sys.modules[__name__])


def aggregator_of(optimizer):
    """The aggregator that votes for ``optimizer`` (or for the optimizer it
    wraps); None when it does not vote."""
    for opt in (optimizer, getattr(optimizer, "inner_optimizer", None)):
        agg = getattr(opt, _patches.AGGREGATOR_ATTR, None) \
            if opt is not None else None
        if agg is not None:
            return agg
    return None


def own_aggregator(optimizer):
    """The aggregator whose state ``optimizer`` saves (a wrapper saves its
    inner optimizer's), else None."""
    agg = aggregator_of(optimizer)
    return agg if agg is not None and agg.owner is optimizer else None


def sparse_strategy_of(optimizer):
    """The sparse-sign strategy ``optimizer`` lives under, or None."""
    for s in (_patches.optimizer_strategy(optimizer),
              tf.distribute.get_strategy()):
        if isinstance(getattr(s, "sparse_sign_config", None),
                      SparseSignConfig):
            return s
    return None


def votes(optimizer) -> bool:
    """True when ``optimizer`` votes or will vote once built."""
    return (aggregator_of(optimizer) is not None or
            sparse_strategy_of(optimizer) is not None)


def on_build(optimizer, variables) -> None:
    """An optimizer built under a sparse-sign strategy gets its aggregator."""
    strategy = sparse_strategy_of(optimizer)
    if strategy is not None:
        attach(optimizer, optimizer, variables, strategy.sparse_sign_config,
               strategy)


def attach(optimizer, owner, variables, config: SparseSignConfig,
           strategy):
    """Builds the aggregation for ``variables`` under ``strategy`` and
    attaches it to ``optimizer``; ``owner`` tracks and saves its state
    (itself, or the wrapper around it)."""
    if config.shadow:
        _say_once(_SHADOW_NOTE.format(config.describe()))
    factory = state_factory.for_owner(owner)
    with factory.scope():
        agg = build_aggregator(config, variables,
                               strategy.num_replicas_in_sync, factory,
                               factory.var_key(optimizer),
                               learning_rate=_direct_rate(optimizer, config),
                               collectives=HostCollectives(
                                   strategy, _patches.CROSS_WORKER),
                               local_replicas=local_replicas(strategy),
                               write=strategy_writer(strategy),
                               accumulation_steps=getattr(
                                   optimizer, "gradient_accumulation_steps",
                                   None))
        worker, _ = worker_index(tf.distribute.get_strategy())
    agg.owner = owner
    # tf.train.Checkpoint saves every replica's memory through this (and
    # which worker's they are: a multi-worker job restoring the chief's
    # file on every worker resets the others' instead of taking the
    # chief's).
    owner.sparsesign_state = _patches.as_trackable(
        lambda: state_lib.checkpoint_tensors(agg.state, worker),
        lambda tensors: state_lib.restore_checkpoint_tensors(
            agg.state, tensors, worker),
        lambda: state_lib.checkpoint_structure(agg.state))
    _patches.attach(optimizer, agg)
    return agg


def local_replicas(strategy) -> int:
    """Replicas of ``strategy`` on this host (all, but for multi-worker)."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return len(strategy.extended.worker_devices)
    return strategy.num_replicas_in_sync


def _direct_rate(optimizer, config: SparseSignConfig):
    """A callable giving ``optimizer``'s current learning rate when the
    aggregation applies the vote itself on the touched coordinates: for
    Keras SGD without momentum (a zero gradient changes nothing), and for
    every optimizer with ``worker_momentum`` (the vote is a sign step; the
    optimizer's own rule is not used: said once in the log). Else None:
    the optimizer applies gradients built from the vote."""
    import keras

    if config.worker_momentum != "none":
        _say_once(_MOMENTUM_NOTE.format(
            config.worker_momentum, type(optimizer).__name__))
        return lambda: optimizer.learning_rate
    if not config.dense and any(c.__name__ in ADAM_FAMILY
                                for c in type(optimizer).__mro__):
        _say_once(_ADAM_NOTE.format(type(optimizer).__name__))
    sgd = keras.optimizers.SGD  # a tf_keras SGD is not one: dense apply
    if (getattr(type(optimizer), "update_step", None) is sgd.update_step and
            not optimizer.momentum and
            not optimizer.gradient_accumulation_steps):
        return lambda: optimizer.learning_rate
    return None


_MOMENTUM_NOTE = (
    "tf_sparsesign: worker_momentum={!r}: each replica keeps its own Lion "
    "momentum and the vote is applied as a sign step, x -= lr * vote, with "
    "{}'s learning rate and its decoupled weight decay; that optimizer's own "
    "update rule is not used.")
#: Optimizers whose second moment would track the ternary vote.
ADAM_FAMILY = ("Adam", "AdamW", "Adamax", "Nadam", "AdaBelief", "Lamb")
_ADAM_NOTE = (
    "tf_sparsesign: {0} receives the majority vote (0 or +-1 per "
    "coordinate), so its second moment tracks the vote, not your "
    "gradients. On a small GPT (README, 'Transformers and Adam') S3GD-MV 1% "
    "around AdamW reached 3.22 bits per byte, around SGD (the plain step "
    "x -= lr * vote) 2.54, with worker_momentum='lion' 2.65 (dense AdamW "
    "2.21): for Adam-family users we recommend wrapping SGD instead "
    "(keras.optimizers.SGD, a rate about 3x Adam's, your weight_decay). {0} "
    "stays as you set it.")
_SHADOW_NOTE = (
    "tf_sparsesign: shadow=True: training is the dense all-reduce, exactly; "
    "each step the sparse step ({}) also runs and is compared with it "
    "(shadow_* stats): its compute and traffic come on top of the dense "
    "step's while shadow mode is on.")
_SAID: set = set()


def _say_once(message: str) -> None:
    """Logs ``message`` once per process."""
    if message not in _SAID:
        _SAID.add(message)
        tf.get_logger().warning(message)


def worker_index(strategy) -> tuple[int, int]:
    """(this worker's index, number of workers) of ``strategy``."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 0, 1
    spec = resolver.cluster_spec().as_dict() if resolver.cluster_spec() \
        else {}
    workers = len(spec.get("worker", [])) + len(spec.get("chief", []))
    task_type = getattr(resolver, "task_type", None)
    task_id = int(getattr(resolver, "task_id", 0) or 0)
    if task_type == "worker" and spec.get("chief"):
        task_id += 1  # the chief is worker 0
    return task_id, max(workers, 1)


def check_finite(grads, variables):
    """``(grads, checks)``: every gradient through ``check_numerics``
    naming its variable; ``checks`` must run before anything is written,
    so a NaN/Inf stops the step before any weight, slot or memory
    changes."""
    checked = [_check_finite(g, v) for g, v in zip(grads, variables)]
    checks = [g.values if isinstance(g, tf.IndexedSlices) else g
              for g in checked if g is not None]
    return checked, checks


def _check_finite(g, variable):
    if g is None:
        return None
    name = getattr(variable, "path", None) or getattr(variable, "name", "?")
    message = (f"tf_sparsesign: the gradient of variable '{name}' is not "
               "finite; no weight was updated in this step")
    if isinstance(g, tf.IndexedSlices):
        return tf.IndexedSlices(step_ops.check_finite(g.values, message),
                                g.indices, g.dense_shape)
    return step_ops.check_finite(g, message)
