"""Top-K (S3GD-MV, and the top-K-values baseline): the ``k``
largest-magnitude nonzero entries."""

from __future__ import annotations

from ... import ops
from ...reference.sign import selected_values
from . import Selection


class TopK:
    """Positions and signs (and, when built with ``want_values``, values) of
    the ``k`` entries of largest ``|e|`` (ties: the lower index), computed by
    the compiled encode op; with error feedback, fused with the memory update
    in one op (:meth:`select_in_place`)."""

    in_place = True

    def __init__(self, seed: int = 0, want_values: bool = False):
        del seed  # deterministic
        self.want_values = bool(want_values)

    def select(self, e, k: int, index: int,
               keep_residual: bool) -> Selection:
        codes, residual = (ops.sparse_sign_encode(e, k, return_residual=True)
                           if keep_residual else
                           (ops.sparse_sign_encode(e, k), None))
        values = selected_values(e, codes) if self.want_values else None
        return Selection(codes, residual, values)

    def select_in_place(self, memory, g, k: int, label: str) -> Selection:
        """Codes of ``memory + g``; ``memory`` becomes the residual."""
        codes, values = ops.accumulate_encode(memory, g, k, label=label,
                                              return_values=True)
        return Selection(codes, None, values if self.want_values else None)
