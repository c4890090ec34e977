"""Communication accounting: bytes the vote moved vs a dense all-reduce.

The counters live in the optimizer's aggregation state (per replica, from
the actual message tensors' sizes, :mod:`tf_sparsesign.aggregation.state`):
``message_bytes`` (this replica's message in the last step),
``bytes_sent`` / ``bytes_received`` (cumulative; in a ring all-gather every
other replica's message crosses each replica's link once), ``dense_bytes``
(what a ring fp32 all-reduce, ``2 (M-1)/M * 4 N`` bytes per replica per
step, would have sent), ``steps`` and ``dropped_rows``.
"""

from __future__ import annotations

from .integration.routing import aggregator_of


def communication_stats(optimizer) -> dict | None:
    """Counters of ``optimizer``'s vote as a dict (None if it does not vote).

    Keys: ``steps``, ``message_bytes``, ``bytes_sent``, ``bytes_received``,
    ``dense_bytes``, ``dropped_rows`` (ints) and ``ratio`` (dense bytes per
    byte sent; inf when nothing was sent); ``time_saved`` (the KPI:
    seconds per step the time model predicts this option saves against the
    dense all-reduce, from the calibration profile or the documented
    defaults; 0 for dense and shadow training); ``exchange`` (the option
    used, e.g. ``"allgather/rice"``) and, while ``auto`` times its
    contenders, ``auto_*``; ``overflow`` with the sharded
    exchange; with ``shadow=True`` also ``shadow_agreement``,
    ``shadow_cosine``, ``shadow_steps``, ``shadow_bytes_sent`` and
    ``shadow_message_bytes`` (:mod:`tf_sparsesign.aggregation.shadow`).

    Example:

    >>> # model.fit(...) under SparseSignStrategy, then:
    >>> # communication_stats(model.optimizer)["ratio"]
    """
    agg = aggregator_of(optimizer)
    if agg is None:
        return None
    stats = agg.state.read_counters()
    sent = stats["bytes_sent"]
    stats["ratio"] = stats["dense_bytes"] / sent if sent else float("inf")
    stats.update(agg.extra_stats())
    return stats
