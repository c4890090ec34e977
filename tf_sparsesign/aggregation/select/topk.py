"""Top-K (S3GD-MV, and the top-K-values baseline): the ``k``
largest-magnitude nonzero entries."""

from __future__ import annotations

from ... import ops
from ...reference.sign import selected_values
from . import Selection


class TopK:
    """Positions and signs (and, when wanted, values) of the ``k`` entries
    of largest ``|e|`` (ties: the lower index), computed by the compiled
    encode op; with error feedback, fused with the memory update in one op
    (``select_in_place``)."""

    def __init__(self, seed: int = 0):
        del seed  # deterministic

    def select(self, e, k: int, slot: int, keep_residual: bool,
               want_values: bool = False) -> Selection:
        codes, residual = (ops.sparse_sign_encode(e, k, return_residual=True)
                           if keep_residual else
                           (ops.sparse_sign_encode(e, k), None))
        values = selected_values(e, codes) if want_values else None
        return Selection(codes, residual, values)

    def select_in_place(self, memory, g, k: int, label: str,
                        want_values: bool = False) -> Selection:
        """Codes of ``memory + g``; ``memory`` becomes the residual."""
        codes, values = ops.accumulate_encode(memory, g, k, label=label,
                                              return_values=True)
        return Selection(codes, None, values if want_values else None)
