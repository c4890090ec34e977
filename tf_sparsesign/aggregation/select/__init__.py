"""Selectors: what one replica sends for one variable.

A selector is built once, ``Selector(seed)``, and called per variable and
step::

    select(e, k, slot, keep_residual, want_values) -> Selection

``e`` is the (error-accumulated) gradient, ``k`` the variable's entry
count. The :class:`Selection` holds ``codes`` (int32 ``[k]``, wire format
v1 in the variable's own index space: ``(i << 1) | sign``, ascending,
``-1`` padding; :mod:`.every_sign`, paired only with the packed codec that
reads codes by index, leaves each ``-1`` where its zero is), ``residual`` (``e`` with the sent entries cleared; only
with ``keep_residual``) and ``values`` (the selected entries of ``e``, in
its dtype, 0 in padding slots; only with ``want_values``: for methods that
send values, and to give back entries a sharded exchange could not send).

A selector that can work in place on the error-feedback memory also offers
``select_in_place(memory, g, k, label, want_values) -> Selection`` (the
memory becomes the residual).

Register a new selector in :data:`tf_sparsesign.aggregation.registry.METHODS`
(:data:`~tf_sparsesign.aggregation.registry.EVERY_SIGN` is chosen
automatically for signSGD-MV).
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf


class Selection(NamedTuple):
    """What a replica sends for one variable (see the package docstring)."""

    codes: tf.Tensor
    residual: tf.Tensor | None = None
    values: tf.Tensor | None = None
