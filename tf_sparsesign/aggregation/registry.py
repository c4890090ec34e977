"""The names users choose, and the part that implements each (one line per
part; no TensorFlow here, so the settings can be validated anywhere).

Adding a method, codec, vote rule or exchange: write one small file in
``select/``, ``codec/``, ``combine/`` or ``exchange/`` satisfying its
Protocol in :mod:`.interfaces`, and add one line below (a codec also gives
its length in :func:`tf_sparsesign.policy.codec_words`, an exchange its
byte model in :data:`tf_sparsesign.policy.BYTE_MODELS`). The settings
accept the new name at once (``config.CHOICES`` is built from these
tables). :func:`decide` picks the parts of one optimizer, once, when it is
built.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

from .. import policy

#: ``method=``: how a replica chooses what it sends.
METHODS = {
    "sign_vote": "select.topk:TopK",
    "topk_values": "select.topk:TopK",  # sends values: see below
    "random_k": "select.random_k:RandomK",
}
#: ``wire=``: how a message is written as int32 words.
CODECS = {
    "int32": "codec.int32:Int32Codec",
    "rice": "codec.rice:RiceCodec",
    "packed": "codec.packed_signs:PackedSignsCodec",
}
#: ``vote=``: how the sign methods combine the gathered rows.
VOTES = {
    "plain": "combine.majority:MajorityVote",
    "weighted": "combine.weighted:WeightedVote",
    "fd": "combine.fd:FederatedDefense",
}
#: Vote rules that weigh rows by statistics across rows (how each row's
#: signs relate to the others'): one host must see every row of every
#: coordinate, so they run on the all-gather exchange only, and on codes
#: (they have no packed form).
WHOLE_VIEW_VOTES = ("fd",)
#: The same vote rules, reading packed rows (codecs in :data:`PACKED_WIRES`)
#: straight from their digits instead of codes.
PACKED_VOTES = {
    "plain": "combine.packed_votes:PackedMajorityVote",
    "weighted": "combine.packed_votes:PackedWeightedVote",
}


class ExchangeEntry(NamedTuple):
    """An exchange: its part (``"module:Class"``), what its messages can
    be (``carries``: ``"codes"``, ``"values"`` (top-K values), ``"packed"``
    (packed signs)) and whether every host sees every row (``whole_view``,
    which the vote rules of :data:`WHOLE_VIEW_VOTES` need)."""

    part: str
    carries: tuple
    whole_view: bool


#: ``aggregation=``: how the replicas' selections are exchanged (each
#: exchange's byte model is :data:`tf_sparsesign.policy.BYTE_MODELS` of the
#: same name; ``"auto"`` picks among the exchanges that can carry the
#: message, :func:`choose`).
EXCHANGES = {
    "allgather": ExchangeEntry("exchange.allgather:AllGatherExchange",
                               ("codes", "values", "packed"), True),
    "sharded": ExchangeEntry("exchange.sharded:ShardedExchange",
                             ("codes",), False),
}
#: The setting that lets :func:`decide` choose (``aggregation``, ``wire``).
AUTO = "auto"
#: The names ``aggregation=`` accepts.
AGGREGATIONS = (*EXCHANGES, AUTO)
#: The names ``wire=`` accepts.
WIRES = (*CODECS, AUTO)
#: ``worker_momentum=``: what each replica keeps on the sending side around
#: its error-feedback memory (None: nothing).
WORKER_MOMENTA = {
    "none": None,
    "lion": "momentum:LionMomentum",
}
#: How value-sending methods (``topk_values``) combine: whatever ``vote``.
VALUES_COMBINER = "combine.mean_values:MeanOfValues"
#: signSGD-MV's selection: ``method="sign_vote"`` when every tensor sends
#: all its entries (density 1) selects nothing; every sign is packed.
EVERY_SIGN = "select.every_sign:EverySign"
#: The codec signSGD-MV always uses (1.6 bits per coordinate, smaller than
#: int32 or Rice codes of every coordinate; the vote is the same).
EVERY_SIGN_WIRE = "packed"
#: Methods whose messages carry values besides positions and signs.
VALUE_METHODS = ("topk_values",)
#: Codecs whose decoded rows stay packed (read by :data:`PACKED_VOTES`).
PACKED_WIRES = ("packed",)


def message_kind(method: str, wire: str) -> str:
    """What a message carries: ``"values"``, ``"packed"`` or ``"codes"``
    (see :attr:`ExchangeEntry.carries`)."""
    if method in VALUE_METHODS:
        return "values"
    return "packed" if wire in PACKED_WIRES else "codes"


def check_vote(vote: str, wire: str, aggregation: str) -> None:
    """ValueError unless ``vote`` can run with ``wire`` and
    ``aggregation`` (see :data:`PACKED_VOTES`, :data:`WHOLE_VIEW_VOTES`)."""
    if wire in PACKED_WIRES and vote not in PACKED_VOTES:
        raise ValueError(
            f"vote={vote!r} cannot read packed rows (wire={wire!r}; "
            f"signSGD-MV, density 1 with method='sign_vote', always sends "
            f"them): with packed rows vote must be one of "
            f"{tuple(PACKED_VOTES)}; use wire='int32' or 'rice' below "
            f"density 1")
    entry = EXCHANGES.get(aggregation)
    if entry is not None and not entry.whole_view and \
            vote in WHOLE_VIEW_VOTES:
        raise ValueError(
            f"vote={vote!r} weighs each row by how its signs relate to every "
            f"other row's, which a shard owner alone cannot see (and the "
            f"{aggregation} exchange trusts shard owners for their votes): "
            f"it needs "
            + " or ".join(f"aggregation={n!r}" for n, e in EXCHANGES.items()
                          if e.whole_view)
            + f" or 'auto', got aggregation={aggregation!r}")


def check_exchange(method: str, wire: str, aggregation: str) -> None:
    """ValueError unless ``aggregation`` can carry the messages of
    ``method`` with ``wire``."""
    entry = EXCHANGES.get(aggregation)
    kind = message_kind(method, wire)
    if entry is None or kind in entry.carries:
        return
    use = " or ".join(f"aggregation={n!r}" for n, e in EXCHANGES.items()
                      if kind in e.carries) + " or 'auto'"
    if kind == "values":
        raise ValueError(f"aggregation={aggregation!r} votes signs; it cannot"
                         f" carry method={method!r} (values): use {use}")
    raise ValueError(f"aggregation={aggregation!r} needs codes (wire 'int32' "
                     f"or 'rice'); packed signs (wire={wire!r}, or "
                     f"signSGD-MV at density 1) cannot be sent that way: use "
                     f"{use}")


def sends_values(method: str) -> bool:
    """True when ``method`` sends values (only the int32 codec carries
    them, and they are combined by :data:`VALUES_COMBINER`)."""
    return method in VALUE_METHODS


class Parts(NamedTuple):
    """One optimizer's parts: ``select``, ``codec`` and ``combine`` specs
    for :func:`load`, ``wire`` (the codec's name) and ``exchange`` (a key
    of :data:`EXCHANGES`)."""

    select: str
    codec: str
    combine: str
    wire: str
    exchange: str


class Choice(NamedTuple):
    """What :func:`decide` chose: ``parts``, the fastest by the time model
    first (more than one: the model cannot tell them apart, and the first
    steps time them, :class:`.exchange.timed.TimedChoice`), ``names``
    (``"allgather/rice"``, ...) and the model's ``predicted`` seconds per
    step of each (empty when nothing was left to choose)."""

    parts: tuple
    names: tuple
    predicted: tuple


#: Collective times on one host: nothing crosses a wire, so ``auto`` ranks
#: the options by their compute alone.
ONE_HOST_LINK = policy.Link(bandwidth=float("inf"), latency=0.0)


def choose(config, sends_everything: bool, num_elements: int, total_k: int,
           num_replicas: int, local_replicas: int | None = None,
           profile=None) -> Parts:
    """The parts :func:`decide` ranks fastest."""
    return decide(config, sends_everything, num_elements, total_k,
                  num_replicas, local_replicas, profile).parts[0]


def decide(config, sends_everything: bool, num_elements: int, total_k: int,
           num_replicas: int, local_replicas: int | None = None,
           profile=None) -> Choice:
    """The parts for ``config``, chosen once when the optimizer is built
    (the step never branches on names).

    ``sends_everything`` (every tensor sends all its entries, see
    :func:`tf_sparsesign.policy.sends_everything`) with ``method=
    "sign_vote"`` is signSGD-MV: no top-K selection (:data:`EVERY_SIGN`)
    and packed signs (:data:`EVERY_SIGN_WIRE`) whatever ``wire`` says; the
    vote is the same as with codes.

    ``aggregation="auto"`` and ``wire="auto"`` choose among the options
    that give the same update (all-gather or sharded with the exact
    downlink; int32, Rice or packed words) and can carry the messages (and
    show every row to every host where the vote needs it): the time model
    (:func:`tf_sparsesign.policy.rank`, with ``profile``, a
    :class:`~tf_sparsesign.policy.Profile` or None for the documented
    defaults) orders them; on one host (``local_replicas ==
    num_replicas``) by compute alone (:data:`ONE_HOST_LINK`), and the
    fastest is taken; across hosts the options the model cannot tell from
    the fastest, with the same vote rule, are all returned, to be timed.
    An explicit setting is never overridden. :func:`check_vote` and
    :func:`check_exchange` say which pairs cannot run.
    """
    method, vote = config.method, config.vote
    select = METHODS[method]
    if method == "sign_vote" and sends_everything:
        select, wires = EVERY_SIGN, (EVERY_SIGN_WIRE,)
    elif config.wire == AUTO:
        wires = ("int32",) if method in VALUE_METHODS else tuple(CODECS)
    else:
        wires = (config.wire,)
    exchanges = (tuple(EXCHANGES) if config.aggregation == AUTO
                 else (config.aggregation,))
    if len(wires) == 1 and len(exchanges) == 1:  # nothing to choose
        check_vote(vote, wires[0], exchanges[0])
        check_exchange(method, wires[0], exchanges[0])
        return Choice((_parts(select, method, vote, wires[0],
                              exchanges[0]),), (f"{exchanges[0]}/"
                                                f"{wires[0]}",), ())
    pairs = [(e, w) for w in wires for e in exchanges
             if _runs(method, vote, w, e)]
    if not pairs:  # the explicit half of the settings rules everything out
        check_vote(vote, wires[0], exchanges[0])
        check_exchange(method, wires[0], exchanges[0])
    one_host = (local_replicas or num_replicas) >= num_replicas
    ranking = policy.rank(
        [f"{e}/{w}" for e, w in pairs],
        policy.Workload(num_elements, total_k, num_replicas,
                        learning_vote=vote in WHOLE_VIEW_VOTES),
        None if one_host else profile,
        link=ONE_HOST_LINK if one_host else None)
    kept = ranking.predictions[:1] if one_host else ranking.contenders
    parts = [_parts(select, method, vote, p.option.wire, p.option.exchange)
             for p in kept]
    same_rule = [i for i, p in enumerate(parts)
                 if p.combine == parts[0].combine]
    return Choice(tuple(parts[i] for i in same_rule),
                  tuple(kept[i].option.name for i in same_rule),
                  tuple(kept[i].seconds for i in same_rule))


def _runs(method: str, vote: str, wire: str, exchange: str) -> bool:
    """Can ``exchange`` carry ``method``'s messages in ``wire`` for
    ``vote``?"""
    try:
        check_vote(vote, wire, exchange)
        check_exchange(method, wire, exchange)
    except ValueError:
        return False
    return not (wire != "int32" and method in VALUE_METHODS)


def _parts(select: str, method: str, vote: str, wire: str,
           exchange: str) -> Parts:
    """The parts of one option."""
    kind = message_kind(method, wire)
    if kind == "values":
        combine = VALUES_COMBINER
    else:
        combine = (PACKED_VOTES if kind == "packed" else VOTES)[vote]
    return Parts(select, CODECS[wire], combine, wire, exchange)


def load(spec: str):
    """The class named by ``"module:Class"`` (relative to this package)."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)
