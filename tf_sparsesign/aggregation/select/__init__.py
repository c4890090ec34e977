"""Selectors: what one replica sends for one variable (the
:class:`~tf_sparsesign.aggregation.interfaces.Selector` contract).

A selector is built once, ``Selector(seed, want_values)``, and called per
variable and step::

    select(e, k, index, keep_residual) -> Selection

``e`` is the (error-accumulated) gradient, ``k`` the variable's entry
count. The :class:`Selection` holds ``codes`` (int32 ``[k]``, wire format
v1 in the variable's own index space: ``(i << 1) | sign``, ascending,
``-1`` padding; :mod:`.every_sign`, paired only with the packed codec that
reads codes by index, leaves each ``-1`` where its zero is), ``residual``
(``e`` with the sent entries cleared; only with ``keep_residual``) and
``values`` (the selected entries of ``e``, in its dtype, 0 in padding
slots; only when built with ``want_values``: for methods that send values,
and to give back entries a sharded exchange could not send).

A selector whose ``in_place`` is True also offers
``select_in_place(memory, g, k, label) -> Selection``: the selection of
``memory + g``, the memory becoming the residual (error feedback fused into
the encode, :mod:`..memory`). The others raise there.

Register a new selector in :data:`tf_sparsesign.aggregation.registry.METHODS`
(:data:`~tf_sparsesign.aggregation.registry.EVERY_SIGN` is chosen
automatically for signSGD-MV).
"""

from __future__ import annotations

from ..interfaces import Selection

__all__ = ["Selection", "NotInPlace"]


class NotInPlace:
    """For selectors that cannot work in place on the memory (``in_place =
    False``): the error-feedback memory then selects from ``memory + g``
    and writes the residual after the step."""

    in_place = False

    def select_in_place(self, memory, g, k: int, label: str) -> Selection:
        raise TypeError(f"{type(self).__name__} does not select in place "
                        "(in_place is False): select from memory + g")
