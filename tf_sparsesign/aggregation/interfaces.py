"""The contracts of the aggregation's parts, as code.

Every part of the step (:mod:`.aggregator`) is an object built once, when
the optimizer is built (:mod:`.build`), with its settings bound; the step
calls it without names or flags. Each kind of part satisfies one
:class:`typing.Protocol` below; ``tests/aggregation/test_registry.py`` builds
every entry of every registry table (:mod:`.registry`) and checks it against
its Protocol, member by member and signature by signature.

The data path, and the part of each step::

    encode   Memory.begin() -> MemoryStep.select(index, g) -> Selection
             (a Selector chooses; error feedback and worker momentum wrap it)
    message  Exchange.message(codes, values) -> Message  (a Codec writes it)
    host     Exchange.host_step(local) -> HostResult      (Collectives bring
             the messages together, the Codec reads them, a VoteRule combines)
    apply    Apply.host_step(update, present) / Apply.gradients(...)

Words used throughout: *index* is a variable's position among the variables
the optimizer was built with (the layout's order); *present* lists, per
gradient that is not None, ``(position among the gradients, index,
gradient)``; codes are wire format v1 (``(i << 1) | sign``, ``-1`` padding).
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Protocol, runtime_checkable

import tensorflow as tf

class Selection(NamedTuple):
    """What a replica sends for one variable: ``codes`` (int32 ``[k]``,
    ascending, ``-1`` padding; the every-sign selector leaves each ``-1``
    where its zero is), ``residual`` (the selected-from tensor with the sent
    entries cleared, when asked) and ``values`` (the selected entries in its
    dtype, 0 in padding slots, when the selector was built to keep them)."""

    codes: tf.Tensor
    residual: tf.Tensor | None = None
    values: tf.Tensor | None = None


class SparseUpdate(NamedTuple):
    """The step's update where it may be nonzero: global ``indices``
    (int32, ascending, unique), the update there (float32) and a score per
    index (``|tally|``; None where a rule has none). No vector of the whole
    index space is ever built."""

    indices: tf.Tensor
    values: tf.Tensor
    scores: tf.Tensor | None = None


class Decoded(NamedTuple):
    """Gathered messages read back: ``codes`` (int32 ``[M, k]``; a packed
    codec hands its checked rows on as they are), ``values`` (float32
    ``[M, k]`` or None) and ``valid`` (bool ``[M]``: rows that decoded)."""

    codes: tf.Tensor
    values: tf.Tensor | None
    valid: tf.Tensor


class Message(NamedTuple):
    """One replica's message (``words``, int32, behind the settings
    fingerprint) and ``kept``: bool like the step's codes, the codes the
    message carries, or None when it carries them all."""

    words: tf.Tensor
    kept: tf.Tensor | None


class HostResult(NamedTuple):
    """What a host step gives back: the ``update``, rows ``dropped``
    (int32) and ``down_words`` (int32: the length of data-dependent
    downlink messages, 0 when there are none)."""

    update: SparseUpdate
    dropped: tf.Tensor
    down_words: tf.Tensor


@runtime_checkable
class Selector(Protocol):
    """What one replica sends for one variable. Built as
    ``Selector(seed, want_values)``; ``want_values`` makes every
    :class:`Selection` carry the selected values (for methods that send
    them, and to give back what an exchange could not send)."""

    #: :meth:`select_in_place` works (error feedback fused into the encode).
    in_place: bool

    def select(self, e: tf.Tensor, k: int, index: int,
               keep_residual: bool) -> Selection:
        """The ``k`` entries of ``e`` to send, in ``e``'s own index space;
        with ``keep_residual`` also ``e`` with them cleared."""

    def select_in_place(self, memory, g: tf.Tensor, k: int,
                        label: str) -> Selection:
        """The selection of ``memory + g``, ``memory`` becoming the
        residual in place (only where :attr:`in_place`)."""


@runtime_checkable
class MemoryStep(Protocol):
    """One step of a :class:`Memory`: selects per variable, gives back what
    the exchange could not send, and writes what must wait for the step."""

    def select(self, index: int, g: tf.Tensor) -> Selection:
        """This replica's selection for variable ``index`` (own index
        space) from gradient ``g``."""

    def accumulated(self, index: int, g: tf.Tensor) -> tf.Tensor:
        """What :meth:`select` selects from (read it first: a fused select
        clears the memory in place)."""

    def give_back(self, kept: tf.Tensor | None) -> tf.Tensor:
        """Selected codes not in ``kept`` (bool over this step's codes, in
        selection order) return to the memory; returns how many (int64)."""

    def commit(self, after: tf.Tensor) -> None:
        """Writes what waits for the step, once ``after`` exists."""


@runtime_checkable
class Memory(Protocol):
    """Per-replica state on the sending side (error feedback, worker
    momentum); built with the selector and every variable's K bound."""

    def begin(self) -> MemoryStep:
        """The :class:`MemoryStep` of one training step."""


@runtime_checkable
class Codec(Protocol):
    """How a message is written as int32 words. Built as
    ``Codec(num_elements, k, with_values, on_invalid)``."""

    #: The codec's name (``wire=``).
    name: str
    #: Static message length in int32 words.
    words: int

    def encode(self, codes: tf.Tensor, values: tf.Tensor | None
               ) -> tf.Tensor:
        """Codes (and values, when the codec carries them) -> ``[words]``."""

    def decode(self, rows: tf.Tensor) -> Decoded:
        """Gathered ``[M, words]`` -> :class:`Decoded` (an undecodable row
        raises or abstains, by the bound ``on_invalid``)."""


@runtime_checkable
class VoteRule(Protocol):
    """How gathered rows become one update. Built as ``Rule(state,
    num_replicas, on_invalid)``; runs once per step and host (or shard), in
    cross-replica context."""

    #: The rule learns from the votes (:meth:`observe` / :meth:`apply`).
    learns: bool

    def combine(self, codes: tf.Tensor, values: tf.Tensor | None,
                num_elements: int) -> tuple[SparseUpdate, tf.Tensor]:
        """``(update, dropped)`` of rows ``[M, k]`` over ``num_elements``
        coordinates (dropped: rows the rule found malformed)."""

    def observe(self, codes: tf.Tensor, update: SparseUpdate) -> tf.Tensor:
        """What this step teaches the rule (summed over shards and hosts
        before :meth:`apply`)."""

    def apply(self, delta: tf.Tensor) -> None:
        """Learns the (summed) observations."""


@runtime_checkable
class Downlink(Protocol):
    """What a shard owner returns in the sharded exchange. Built as
    ``Downlink(shard_size, capacity, num_replicas, on_invalid)``."""

    #: Static message length in words, or None (padded per step).
    fixed_words: int | None

    def encode(self, update: SparseUpdate) -> tf.Tensor:
        """One shard's update as words."""

    def decode(self, words: tf.Tensor) -> tuple[SparseUpdate, tf.Tensor]:
        """Every shard's words -> ``(global update, valid [M])``."""


@runtime_checkable
class Collectives(Protocol):
    """How this host's per-replica tensors meet everyone's (cross-replica
    context). On one host: stacking and transposing; across workers: one
    static-shape collective per local device."""

    def replica_ids(self, local: list) -> list:
        """Global replica ids of this host's replicas, in local order."""

    def gather(self, local: list) -> tf.Tensor:
        """``[M, ...]``: every replica's tensor, in replica order."""

    def all_to_all(self, local: list) -> list:
        """Row j of each local ``[M, ...]`` tensor to replica j."""

    def sum(self, local: list, host_sum: tf.Tensor) -> tf.Tensor:
        """The sum over all hosts of ``host_sum``."""


@runtime_checkable
class Exchange(Protocol):
    """How the replicas' selections become one update: message, host step
    (gather, decode, combine) and its bytes."""

    #: May leave selected codes unsent (they go back to the memory, so the
    #: selector must keep their values).
    gives_back: bool
    #: The :class:`VoteRule` it combines rows with.
    rule: VoteRule
    #: The :class:`Codec` its messages are written with.
    codec: Codec
    #: The static shape of one replica's message words.
    message_shape: tuple

    def message(self, codes: tf.Tensor, values: tf.Tensor | None
                ) -> Message:
        """Replica context: this replica's message from its selected codes
        (global index space)."""

    def host_step(self, local: list) -> HostResult:
        """Cross-replica context, once per host: this host's replicas'
        message words in, the step's update out."""

    def wire(self, words: tf.Tensor, down_words: tf.Tensor) -> tuple:
        """``(own, sent, received)`` bytes of this replica for the step."""

    def stats(self) -> dict:
        """Eagerly, what it decided at run time, for the communication
        stats (``auto_*`` for :class:`.exchange.timed.TimedChoice`; empty
        for an exchange fixed when built)."""


@runtime_checkable
class Apply(Protocol):
    """The update becomes the step: once per host for every replica's
    copy (:meth:`host_step`), or per replica as gradients for the wrapped
    optimizer (:meth:`gradients`); one of the two does the work."""

    def host_step(self, update: SparseUpdate, present: list) -> None:
        """Cross-replica context, once per host."""

    def gradients(self, update: SparseUpdate, present: list,
                  grads_and_vars: list) -> list:
        """Replica context: the (gradient, variable) pairs the wrapped
        optimizer still has to apply (empty when :meth:`host_step` did)."""


@runtime_checkable
class Adversary(Protocol):
    """Where a replica could lie (experiments only; :mod:`.adversary_hook`
    documents each point, :data:`.adversary_hook.HONEST` is the default)."""

    #: ``corrupt_selection`` reads ``dense`` (the memories are read for it).
    needs_dense: bool

    def bind(self, message_codes: int) -> "Adversary":
        """Called once at build (in the strategy scope)."""

    def corrupt_selection(self, codes: tf.Tensor, values, num_elements: int,
                          dense: Callable | None = None) -> tuple:
        """The step's codes (global index space) and values as sent."""

    def corrupt_message(self, words: tf.Tensor, codec: str,
                        num_elements: int) -> tf.Tensor:
        """The coded message words."""

    def corrupt_gradients(self, grads: list) -> list:
        """Dense gradients (the dense baseline)."""


@runtime_checkable
class StateFactory(Protocol):
    """Creates the aggregation's variables (Keras 3 or tf_keras, or plain
    ``tf.Variable`` in tests); see :class:`.state.AggregatorState`."""

    def replica_local(self, reference, name: str):
        """One value per replica, shaped like ``reference``, not tracked."""

    def tracked(self, name: str, shape=(), dtype="int64"):
        """A variable saved with the owning optimizer's own."""

    def untracked(self, name: str, shape=(), dtype="int64"):
        """One value per replica, not tracked (never saved)."""


#: Each registry table and the Protocol its entries satisfy.
PROTOCOLS = {"METHODS": Selector, "EVERY_SIGN": Selector, "CODECS": Codec,
             "VOTES": VoteRule, "PACKED_VOTES": VoteRule,
             "VALUES_COMBINER": VoteRule, "DOWNLINKS": Downlink,
             "EXCHANGES": Exchange, "WORKER_MOMENTA": Memory}
