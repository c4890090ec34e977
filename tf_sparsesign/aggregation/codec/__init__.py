"""Codecs: a replica's codes (and values) as int32 words, and back (the
:class:`~tf_sparsesign.aggregation.interfaces.Codec` contract).

A codec is built once, ``Codec(num_elements, k, with_values, on_invalid)``
(the index space it writes, the entries per message, whether values ride
along, and what an undecodable row does: ``"raise"`` an error, ``"drop"``
abstain), and offers::

    name                       its ``wire=`` name
    words                      the static message length (int32 words)
    encode(codes, values)      -> int32 [words]
    decode(rows)               -> Decoded for the gathered [M, words]

:class:`Decoded` holds ``codes`` (int32 ``[M, k]``), ``values`` (float32
``[M, k]`` or None) and ``valid`` (bool ``[M]``: rows that decoded). A
packed codec (``registry.PACKED_WIRES``, e.g. :mod:`.packed_signs`) returns
its checked rows as they are instead of codes, for the vote rules of
``registry.PACKED_VOTES``; a row of ``-1`` words must abstain there, as a
row of ``-1`` codes does. A codec's size arithmetic lives in
:func:`tf_sparsesign.policy.codec_words`, so that ``plan`` and the
accounting share it.

Register a new codec in :data:`tf_sparsesign.aggregation.registry.CODECS`.
"""

from __future__ import annotations

from ..interfaces import Decoded

__all__ = ["Decoded"]
