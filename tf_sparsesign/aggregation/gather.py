"""Gather: every replica's message, as rows ``[M, W]``, once per host.

Runs in cross-replica context (the aggregator's host step). On one host the
local replicas' messages are simply stacked (no collective, and no hub
device: the vote is computed once, here). Across workers it is **one**
collective all-gather with static shapes (``CollectiveGatherV2``: no shape
round, NCCL when the strategy's communication options ask for it), launched
from each local device; rows come in global replica order. The collective
launch is passed in by the integration (it needs the strategy's private
launchers, see ``integration/_patches.py``).
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf


def gather_rows(strategy, message, collective: Callable) -> tf.Tensor:
    """``[M, W]``: the message of every replica in sync (``message`` is this
    host's per-replica value; ``collective(strategy, local_rows)`` gathers
    across workers)."""
    local = strategy.experimental_local_results(message)
    if strategy.num_replicas_in_sync == len(local):
        return tf.stack(local)
    return collective(strategy, [m[None, :] for m in local])
