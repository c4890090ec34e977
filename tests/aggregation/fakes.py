"""Fakes shared by the part tests: scratch state (plain tf.Variable, no
strategy, no Keras), one-host collectives, and small helpers."""

import numpy as np
import tensorflow as tf

from tf_sparsesign.aggregation import registry
from tf_sparsesign.aggregation.exchange import ExchangeSetup
from tf_sparsesign.aggregation.exchange.collectives import LOCAL
from tf_sparsesign.aggregation.framing import SettingsFrame
from tf_sparsesign.aggregation.probe import ScratchFactory
from tf_sparsesign.aggregation.state import AggregatorState
from tf_sparsesign.config import SparseSignConfig

FACTORY = ScratchFactory()


def state(variables=(), m=4, error_feedback=False):
    """An AggregatorState over plain variables."""
    return AggregatorState(FACTORY, list(variables), m, error_feedback)


def rule(name="plain", m=4, on_invalid="raise", table=None):
    """A vote rule from the registry, with scratch state."""
    spec = (table or registry.VOTES)[name]
    return registry.load(spec)(state(m=m), m, on_invalid)


def codes_from_signs(signs) -> np.ndarray:
    """Rows of ternary signs [M, N] -> codes [M, k], padded with -1."""
    rows = [[(i << 1) | int(s < 0) for i, s in enumerate(r) if s]
            for r in signs]
    k = max(1, max(len(r) for r in rows))
    return np.array([r + [-1] * (k - len(r)) for r in rows], np.int32)


def dense(update, n) -> np.ndarray:
    """A sparse update as the update of every coordinate."""
    return tf.scatter_nd(update.indices[:, None], update.values,
                         [n]).numpy()


def exchange_setup(n, k, m, wire="int32", on_invalid="raise", vote="plain",
                   frame_config=None, **more):
    """An ExchangeSetup with one-host collectives and a scratch rule."""
    config = frame_config or SparseSignConfig(on_invalid=on_invalid)
    return ExchangeSetup(
        num_elements=n, total_k=k, num_replicas=m,
        codec=registry.load(registry.CODECS[wire]),
        with_values=more.pop("with_values", False), on_invalid=on_invalid,
        rule=rule(vote, m, on_invalid, table=(
            registry.PACKED_VOTES if wire in registry.PACKED_WIRES else
            None)), frame=SettingsFrame(config, 77),
        collectives=LOCAL, **more)


def random_codes(rng, n, k) -> np.ndarray:
    """One valid message: k distinct ascending indices with random signs."""
    idx = np.sort(rng.choice(n, k, replace=False))
    return ((idx << 1) | rng.integers(0, 2, k)).astype(np.int32)
