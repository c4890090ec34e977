"""Communication accounting: bytes the vote moved vs a dense all-reduce.

The counters live in the optimizer's aggregator (per replica, from the
actual message tensors' sizes): ``message_bytes`` (this replica's message in
the last step), ``bytes_sent`` / ``bytes_received`` (cumulative; in a ring
all-gather every other replica's message crosses each replica's link once),
``dense_bytes`` (what a ring fp32 all-reduce, ``2 (M-1)/M * 4 N`` bytes per
replica per step, would have sent), ``steps`` and ``dropped_rows``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from . import hooks

LOG_KEYS = ("comm_message_bytes", "comm_bytes_sent", "comm_dense_bytes",
            "comm_ratio", "comm_dropped_rows")


def communication_stats(optimizer) -> dict | None:
    """Counters of ``optimizer``'s vote as a dict (None if it does not vote).

    Keys: ``steps``, ``message_bytes``, ``bytes_sent``, ``bytes_received``,
    ``dense_bytes``, ``dropped_rows`` (ints) and ``ratio`` (dense bytes per
    byte sent; inf when nothing was sent).
    """
    agg = hooks.aggregator_of(optimizer)
    if agg is None:
        return None
    stats = agg.read_counters()
    sent = stats["bytes_sent"]
    stats["ratio"] = stats["dense_bytes"] / sent if sent else float("inf")
    return stats


class CommunicationLogger(keras.callbacks.Callback):
    """Adds the vote's communication counters to ``fit`` logs and,
    with ``log_dir``, to TensorBoard.

    Log keys (cumulative per replica since the optimizer was built):
    ``comm_message_bytes`` (last message), ``comm_bytes_sent``,
    ``comm_dense_bytes`` (a dense fp32 ring all-reduce, same steps),
    ``comm_ratio`` (dense / sent), ``comm_dropped_rows``.

    Args:
      log_dir: optional folder for TensorBoard scalars (``comm/*``).
      update_freq: ``"epoch"`` or ``"batch"`` (per-batch logs too).

    Example:

    >>> logger = CommunicationLogger()
    >>> # model.fit(x, y, callbacks=[logger]); history.history["comm_ratio"]
    """

    def __init__(self, log_dir: str | None = None,
                 update_freq: str = "epoch"):
        super().__init__()
        if update_freq not in ("epoch", "batch"):
            raise ValueError(f"update_freq must be 'epoch' or 'batch', got "
                             f"{update_freq!r}")
        self.log_dir = log_dir
        self.update_freq = update_freq
        self._writer = None

    def _stats(self):
        return communication_stats(self.model.optimizer)

    def _log(self, logs, step):
        stats = self._stats()
        if stats is None or logs is None:
            return
        values = {
            "comm_message_bytes": stats["message_bytes"],
            "comm_bytes_sent": stats["bytes_sent"],
            "comm_dense_bytes": stats["dense_bytes"],
            "comm_ratio": stats["ratio"],
            "comm_dropped_rows": stats["dropped_rows"],
        }
        logs.update(values)
        if self.log_dir:
            if self._writer is None:
                self._writer = tf.summary.create_file_writer(self.log_dir)
            with self._writer.as_default():
                for key, value in values.items():
                    tf.summary.scalar("comm/" + key[len("comm_"):],
                                      float(value), step=step)
                self._writer.flush()

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "batch":
            self._log(logs, int(self.model.optimizer.iterations.numpy()))

    def on_epoch_end(self, epoch, logs=None):
        self._log(logs, epoch)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
