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

#: ``method=``: how a replica chooses what it sends.
METHODS = {
    "sign_vote": "select.topk_signs:TopKSigns",
    "topk_values": "select.topk_values:TopKValues",
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
}
#: The same vote rules, reading packed rows (codecs in :data:`_PACKED`)
#: straight from their digits instead of codes.
PACKED_VOTES = {
    "plain": "combine.packed_votes:PackedMajorityVote",
    "weighted": "combine.packed_votes:PackedWeightedVote",
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


def sends_values(method: str) -> bool:
    """True when ``method`` sends values (only the int32 codec carries
    them, and they are combined by :data:`VALUES_COMBINER`)."""
    return method in _VALUE_METHODS


class Parts(NamedTuple):
    """One optimizer's parts: ``select``, ``codec`` and ``combine`` specs
    for :func:`load`, and ``wire``, the codec's name."""

    select: str
    codec: str
    combine: str
    wire: str


def choose(method: str, wire: str, vote: str, sends_everything: bool
           ) -> Parts:
    """The parts for these settings, chosen once when the optimizer is
    built (the step never branches on names).

    ``sends_everything`` (every tensor sends all its entries, see
    :func:`tf_sparsesign.policy.sends_everything`) with ``method=
    "sign_vote"`` is signSGD-MV: no top-K selection (:data:`EVERY_SIGN`)
    and packed signs (:data:`EVERY_SIGN_WIRE`) whatever ``wire`` says. The
    vote is the same as with codes.

    >>> choose("sign_vote", "int32", "plain", True).wire
    'packed'
    >>> choose("sign_vote", "rice", "plain", False).combine
    'combine.majority:MajorityVote'
    """
    select = METHODS[method]
    if method == "sign_vote" and sends_everything:
        select, wire = EVERY_SIGN, EVERY_SIGN_WIRE
    if sends_values(method):
        combine = VALUES_COMBINER
    else:
        combine = (PACKED_VOTES if wire in _PACKED else VOTES)[vote]
    return Parts(select, CODECS[wire], combine, wire)


def load(spec: str):
    """The class named by ``"module:Class"`` (relative to this package)."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)
