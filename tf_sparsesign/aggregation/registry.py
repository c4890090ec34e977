"""The names users choose, and the part that implements each (one line per
part; no TensorFlow here, so the settings can be validated anywhere).

Adding a method, codec or vote rule: write one small file in ``select/``,
``codec/`` or ``combine/`` implementing the interface documented in that
package, and add one line below (a codec also gives its length in
:func:`tf_sparsesign.policy.codec_words`). :func:`choose` picks the parts
of one optimizer, once, when it is built.
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
#: The same vote rules, reading packed rows (codecs in :data:`_PACKED`)
#: straight from their digits instead of codes.
PACKED_VOTES = {
    "plain": "combine.packed_votes:PackedMajorityVote",
    "weighted": "combine.packed_votes:PackedWeightedVote",
}
#: ``aggregation=``: how the replicas' selections are exchanged ("auto"
#: picks one of these by the byte model).
EXCHANGES = {
    "allgather": "exchange.allgather:AllGatherExchange",
    "sharded": "exchange.sharded:ShardedExchange",
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
_VALUE_METHODS = ("topk_values",)
#: Codecs whose decoded rows stay packed (read by :data:`PACKED_VOTES`).
_PACKED = ("packed",)


def check_vote(vote: str, wire: str, aggregation: str) -> None:
    """ValueError unless ``vote`` can run with ``wire`` and
    ``aggregation`` (see :data:`PACKED_VOTES`, :data:`WHOLE_VIEW_VOTES`)."""
    if wire in _PACKED and vote not in PACKED_VOTES:
        raise ValueError(
            f"vote={vote!r} cannot read packed rows (wire={wire!r}; "
            f"signSGD-MV, density 1 with method='sign_vote', always sends "
            f"them): with packed rows vote must be one of "
            f"{tuple(PACKED_VOTES)}; use wire='int32' or 'rice' below "
            f"density 1")
    if aggregation == "sharded" and vote in WHOLE_VIEW_VOTES:
        raise ValueError(
            f"vote={vote!r} weighs each row by how its signs relate to every "
            f"other row's, which a shard owner alone cannot see (and the "
            f"sharded exchange trusts shard owners for their votes): it "
            f"needs aggregation='allgather' or 'auto', got "
            f"aggregation={aggregation!r}")


def sends_values(method: str) -> bool:
    """True when ``method`` sends values (only the int32 codec carries
    them, and they are combined by :data:`VALUES_COMBINER`)."""
    return method in _VALUE_METHODS


class Parts(NamedTuple):
    """One optimizer's parts: ``select``, ``codec`` and ``combine`` specs
    for :func:`load`, ``wire`` (the codec's name) and ``exchange`` (a key
    of :data:`EXCHANGES`)."""

    select: str
    codec: str
    combine: str
    wire: str
    exchange: str


def choose(config, sends_everything: bool, num_elements: int, total_k: int,
           num_replicas: int, local_replicas: int | None = None) -> Parts:
    """The parts for ``config``, chosen once when the optimizer is built
    (the step never branches on names).

    ``sends_everything`` (every tensor sends all its entries, see
    :func:`tf_sparsesign.policy.sends_everything`) with ``method=
    "sign_vote"`` is signSGD-MV: no top-K selection (:data:`EVERY_SIGN`)
    and packed signs (:data:`EVERY_SIGN_WIRE`) whatever ``wire`` says; the
    vote is the same as with codes. ``aggregation="auto"`` all-gathers on
    one host (``local_replicas == num_replicas``) and otherwise takes the
    cheaper exchange by :func:`tf_sparsesign.policy.choose_aggregation`;
    packed messages, values (``topk_values``) and the votes of
    :data:`WHOLE_VIEW_VOTES` are always all-gathered (:func:`check_vote` says which pairs cannot run).
    """
    method, wire = config.method, config.wire
    select = METHODS[method]
    if method == "sign_vote" and sends_everything:
        select, wire = EVERY_SIGN, EVERY_SIGN_WIRE
    exchange = config.aggregation
    if sends_values(method):
        combine = VALUES_COMBINER
    else:
        check_vote(config.vote, wire, exchange)
        combine = (PACKED_VOTES if wire in _PACKED else VOTES)[config.vote]
    if exchange == "sharded" and wire in _PACKED:
        raise ValueError("aggregation='sharded' needs codes (wire 'int32' "
                         "or 'rice'); signSGD-MV's packed signs are "
                         "all-gathered (use aggregation='allgather' or "
                         "'auto')")
    if exchange == "auto":
        one_host = (local_replicas or num_replicas) >= num_replicas
        whole = (wire in _PACKED or config.vote in WHOLE_VIEW_VOTES or
                 sends_values(method))  # values are never sharded
        exchange = ("allgather" if one_host or whole else
                    policy.choose_aggregation(num_elements, total_k,
                                              num_replicas, wire,
                                              config.shard_capacity))
    return Parts(select, CODECS[wire], combine, wire, exchange)


def load(spec: str):
    """The class named by ``"module:Class"`` (relative to this package)."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)
