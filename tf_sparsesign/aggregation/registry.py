"""The names users choose, and the part that implements each (one line per
part; no TensorFlow here, so the settings can be validated anywhere).

Adding a method, codec or vote rule: write one small file in ``select/``,
``codec/`` or ``combine/`` implementing the interface documented in that
package, and add one line below.
"""

from __future__ import annotations

import importlib

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
}
#: ``vote=``: how the sign methods combine the gathered rows.
VOTES = {
    "plain": "combine.majority:MajorityVote",
    "weighted": "combine.weighted:WeightedVote",
    "fd": "combine.fd:FederatedDefense",
}
#: How value-sending methods (``topk_values``) combine: whatever ``vote``.
VALUES_COMBINER = "combine.mean_values:MeanOfValues"
#: Methods whose messages carry values besides positions and signs.
_VALUE_METHODS = ("topk_values",)


def sends_values(method: str) -> bool:
    """True when ``method`` sends values (only the int32 codec carries
    them, and they are combined by :data:`VALUES_COMBINER`)."""
    return method in _VALUE_METHODS


def load(spec: str):
    """The class named by ``"module:Class"`` (relative to this package)."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)
