"""Top-K signs (S3GD-MV): the ``k`` largest-magnitude nonzero entries."""

from __future__ import annotations

from ... import ops
from . import Selection


class TopKSigns:
    """Positions and signs of the ``k`` entries of largest ``|e|`` (ties:
    the lower index), computed by the compiled encode op; with error
    feedback, fused with the memory update in one op (``select_in_place``).
    """

    def __init__(self, seed: int = 0):
        del seed  # deterministic

    def select(self, e, k: int, slot: int, keep_residual: bool) -> Selection:
        if keep_residual:
            return Selection(*ops.sparse_sign_encode(e, k,
                                                     return_residual=True))
        return Selection(ops.sparse_sign_encode(e, k))

    def select_in_place(self, memory, g, k: int, label: str):
        """Codes of ``memory + g``; ``memory`` becomes the residual."""
        return ops.accumulate_encode(memory, g, k, label=label)
