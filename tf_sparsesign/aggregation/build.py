"""Builds one optimizer's aggregation: every part chosen and constructed
once, with its settings bound (:mod:`.interfaces`); the step
(:class:`.aggregator.Aggregator`) then only calls them."""

from __future__ import annotations

from typing import Callable

from .. import policy
from ..config import SparseSignConfig
from . import adversary_hook, memory as memory_lib, registry
from .accumulation import Accumulation
from .aggregator import Aggregator
from .apply import DenseGradients, SparseSGD, write_directly
from .dense import DenseAggregator
from .exchange import ExchangeSetup
from .exchange.collectives import LOCAL
from .framing import SettingsFrame
from .layout import Layout
from .shadow import STATS as SHADOW_STATS
from .shadow import ShadowAggregator, UntrackedFactory
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
        sparse = _sparse(config, Layout(variables, var_key), num_replicas,
                         UntrackedFactory(factory), None, collectives,
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
    parts = registry.choose(config, policy.sends_everything(layout.sizes, ks),
                            layout.total, sum(ks), num_replicas,
                            local_replicas)
    with_values = registry.sends_values(config.method)
    policy.warn_if_wasteful(layout.sizes, ks, parts.wire, with_values)
    momentum = registry.WORKER_MOMENTA[config.worker_momentum]
    groups = (("momentum",) if momentum else ()) + (
        ("accumulator",) if accumulation_steps else ())
    state = AggregatorState(factory, variables, num_replicas,
                            config.error_feedback, groups=groups)
    exchange_cls = registry.load(registry.EXCHANGES[parts.exchange].part)
    # Tracked variables keep their order of creation (saved files index
    # the optimizer's variables): the rule's state, then the counters an
    # exchange adds.
    rule = registry.load(parts.combine)(state, num_replicas,
                                        config.on_invalid)
    if exchange_cls.gives_back:
        state.add_counter("overflow")
    selector = registry.load(parts.select)(
        config.seed, with_values or exchange_cls.gives_back)
    if momentum is None:
        memory = memory_lib.make(state.memories, selector, ks,
                                 [layout.label(i) for i in range(len(ks))])
    else:  # worker momentum, with error feedback on the gradient
        memory = registry.load(momentum)(
            selector, ks, state.memories, state.group("momentum"),
            config.beta_1, config.beta_2)
    adversary = adversary_hook.bind(config.adversary, sum(ks))
    exchange = exchange_cls(ExchangeSetup(
        num_elements=layout.total, total_k=sum(ks),
        num_replicas=num_replicas, codec=registry.load(parts.codec),
        with_values=with_values, on_invalid=config.on_invalid,
        rule=rule,
        frame=SettingsFrame(config, config.fingerprint(layout.sizes, ks)),
        collectives=collectives, downlink=config.downlink,
        shard_capacity=config.shard_capacity, adversary=adversary))
    return Aggregator(layout, state, ks, memory, exchange, apply, adversary,
                      policy.dense_ring_bytes(layout.total, num_replicas),
                      _accumulation(state, accumulation_steps))


def _accumulation(state, steps):
    """The gradient accumulation over ``state``'s accumulators, or None."""
    return Accumulation(state.group("accumulator"), steps) if steps else \
        None
