"""Builds one optimizer's aggregation: every part chosen and constructed
once, with its settings bound (:mod:`.interfaces`); the step
(:class:`.aggregator.Aggregator`) then only calls them."""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from .. import policy
from ..config import SparseSignConfig
from . import adversary_hook, memory as memory_lib, registry
from .accumulation import Accumulation
from .aggregator import Aggregator
from .apply import DenseGradients, SparseSGD, write_directly
from .dense import DenseAggregator
from .exchange import ExchangeSetup
from .exchange.collectives import LOCAL
from .exchange.timed import TimedChoice
from .framing import SettingsFrame
from .layout import Layout
from .shadow import STATS as SHADOW_STATS
from .shadow import ShadowAggregator, UntrackedFactory, VoteAsUpdate
from .state import AggregatorState


def build_aggregator(config: SparseSignConfig, variables, num_replicas: int,
                     factory, var_key: Callable, learning_rate=None,
                     collectives=LOCAL, local_replicas: int | None = None,
                     write: Callable = write_directly,
                     accumulation_steps: int | None = None):
    """The aggregation for ``variables``: :class:`.aggregator.Aggregator`,
    the dense baseline with ``config.dense``, or the dense baseline with
    the sparse step watched beside it with ``config.shadow``
    (:class:`.shadow.ShadowAggregator`).

    Args:
      config: the settings.
      variables: the trainable variables, in the optimizer's order.
      num_replicas: replicas in sync (voters).
      factory: creates state variables (:class:`~.interfaces.StateFactory`).
      var_key: maps a variable or replica component to a stable key.
      learning_rate: a callable returning the optimizer's current learning
        rate, for optimizers where a zero gradient changes nothing (plain
        SGD) and for ``worker_momentum`` (the vote is a sign step): the
        touched coordinates are then updated directly (:mod:`.apply`, with
        ``write``). None: per-variable gradients for the wrapped optimizer.
      collectives: how a host step's tensors meet
        (:class:`~.interfaces.Collectives`; default: everything on one
        host, :data:`.exchange.collectives.LOCAL`).
      local_replicas: replicas on this host (default: all); with
        ``aggregation="auto"`` a job on one host takes the first exchange
        that fits (nothing crosses a wire), several hosts the cheaper one.
      write: how :class:`.apply.SparseSGD` writes a variable on this host
        (default: directly, no strategy).
      accumulation_steps: the optimizer's ``gradient_accumulation_steps``
        (None or 0: none): each replica accumulates its micro-steps'
        gradients (:mod:`.accumulation`).
    """
    layout = Layout(variables, var_key)
    accumulating = ("accumulator",) if accumulation_steps else ()
    if config.dense or config.shadow:
        state = AggregatorState(factory, variables, num_replicas, False,
                                groups=accumulating)
        dense = DenseAggregator(config, layout, state,
                                _accumulation(state, accumulation_steps))
        if not config.shadow:
            return dense
        if accumulation_steps:
            raise ValueError("shadow=True does not support the optimizer's "
                             "gradient_accumulation_steps yet; run the "
                             "shadow without accumulation")
        shadow_layout = Layout(variables, var_key)
        sparse = _sparse(config, shadow_layout, num_replicas,
                         UntrackedFactory(factory),
                         VoteAsUpdate(shadow_layout), collectives,
                         local_replicas, None)
        return ShadowAggregator(dense, sparse, {
            name: factory.untracked(f"sparsesign_shadow_{name}", (),
                                    "float32") for name in SHADOW_STATS})
    if config.worker_momentum != "none" and learning_rate is None:
        raise ValueError("worker_momentum applies the vote as a sign step "
                         "(x -= lr * vote): the integration must pass the "
                         "optimizer's learning rate")
    apply = (SparseSGD(learning_rate, layout, write)
             if learning_rate is not None else DenseGradients(layout))
    return _sparse(config, layout, num_replicas, factory, apply, collectives,
                   local_replicas, accumulation_steps)


def _sparse(config, layout, num_replicas, factory, apply, collectives,
            local_replicas, accumulation_steps) -> Aggregator:
    """The sparse step's parts for ``layout``; ``apply`` None: gradients
    for the wrapped optimizer (:class:`.apply.DenseGradients`)."""
    apply = apply or DenseGradients(layout)
    variables = layout.variables
    layout.check_index_space()
    ks = policy.allocate(layout.sizes, config.density, config.k,
                         num_replicas)
    profile = _profile(config)
    choice = registry.decide(config, policy.sends_everything(layout.sizes,
                                                            ks),
                             layout.total, sum(ks), num_replicas,
                             local_replicas, profile)
    _say_choice(choice, profile)
    parts = choice.parts[0]
    with_values = registry.sends_values(config.method)
    policy.warn_if_wasteful(layout.sizes, ks, parts.wire, with_values)
    momentum = registry.WORKER_MOMENTA[config.worker_momentum]
    groups = (("momentum",) if momentum else ()) + (
        ("accumulator",) if accumulation_steps else ())
    state = AggregatorState(factory, variables, num_replicas,
                            config.error_feedback, groups=groups)
    exchange_classes = [registry.load(registry.EXCHANGES[p.exchange].part)
                        for p in choice.parts]
    gives_back = any(cls.gives_back for cls in exchange_classes)
    # Tracked variables keep their order of creation (saved files index
    # the optimizer's variables): the rule's state, then the counters an
    # exchange adds.
    rule = registry.load(parts.combine)(state, num_replicas,
                                        config.on_invalid)
    if gives_back:
        state.add_counter("overflow")
    selector = registry.load(parts.select)(config.seed,
                                           with_values or gives_back)
    if momentum is None:
        memory = memory_lib.make(state.memories, selector, ks,
                                 [layout.label(i) for i in range(len(ks))])
    else:  # worker momentum, with error feedback on the gradient
        memory = registry.load(momentum)(
            selector, ks, state.memories, state.group("momentum"),
            config.beta_1, config.beta_2)
    adversary = adversary_hook.bind(config.adversary, sum(ks))
    frame = SettingsFrame(config, config.fingerprint(layout.sizes, ks))
    exchanges = [cls(ExchangeSetup(
        num_elements=layout.total, total_k=sum(ks),
        num_replicas=num_replicas, codec=registry.load(p.codec),
        with_values=with_values, on_invalid=config.on_invalid, rule=rule,
        frame=frame, collectives=collectives, downlink=config.downlink,
        shard_capacity=config.shard_capacity, adversary=adversary))
        for p, cls in zip(choice.parts, exchange_classes)]
    exchange = exchanges[0] if len(exchanges) == 1 else TimedChoice(
        exchanges, choice.names, choice.predicted, collectives,
        factory.untracked)
    return Aggregator(layout, state, ks, memory, exchange, apply, adversary,
                      policy.dense_ring_bytes(layout.total, num_replicas),
                      _accumulation(state, accumulation_steps),
                      option=choice.names[0] if len(exchanges) == 1 else
                      "timing: " + ", ".join(choice.names),
                      time_saved=_time_saved(choice.names[0], layout.total,
                                             sum(ks), num_replicas,
                                             local_replicas, profile))


def _time_saved(option, n, k, m, local_replicas, profile) -> float:
    """Seconds per step the time model predicts ``option`` saves against
    the dense all-reduce (one host: compute alone; a profile taken with
    another M: the documented defaults)."""
    one_host = (local_replicas or m) >= m
    link = registry.ONE_HOST_LINK if one_host else None
    try:
        dense, mine = policy.predict(policy.Workload(n, k, m),
                                     ["dense", option], profile, link)
    except policy.ProfileMismatch:
        dense, mine = policy.predict(policy.Workload(n, k, m),
                                     ["dense", option], None, link)
    return dense.seconds - mine.seconds


def _say_choice(choice, profile) -> None:
    """One log line when ``auto`` chose without timing."""
    if len(choice.predicted) != 1:
        return  # nothing chosen, or TimedChoice logs after its trial
    source = "the calibration profile" if profile is not None else \
        "the time model's defaults (no profile)"
    message = (f"tf_sparsesign: auto chose exchange {choice.names[0]}: "
               f"{choice.predicted[0]:.3g} s per step predicted from "
               f"{source}")
    if message not in _SAID:
        _SAID.add(message)
        tf.get_logger().warning(message)


_SAID: set = set()


def _profile(config):
    """The calibration profile ``config.profile`` names, or None."""
    return (policy.load_profile(config.profile)
            if config.profile is not None else None)


def _accumulation(state, steps):
    """The gradient accumulation over ``state``'s accumulators, or None."""
    return Accumulation(state.group("accumulator"), steps) if steps else \
        None
