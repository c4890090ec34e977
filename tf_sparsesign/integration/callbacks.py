"""Keras callbacks: communication logs, and backups that keep every
worker's error-feedback memory."""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from ..accounting import communication_stats
from . import _patches
from .routing import worker_index

#: The keys :class:`CommunicationLogger` adds to the ``fit`` logs.
LOG_KEYS = ("comm_message_bytes", "comm_bytes_sent", "comm_dense_bytes",
            "comm_ratio", "comm_dropped_rows", "comm_time_saved")


class CommunicationLogger(keras.callbacks.Callback):
    """Adds the vote's communication counters to ``fit`` logs and, with
    ``log_dir``, to TensorBoard.

    Log keys (cumulative per replica since the optimizer was built):
    ``comm_message_bytes`` (last message), ``comm_bytes_sent``,
    ``comm_dense_bytes`` (a dense fp32 ring all-reduce, same steps),
    ``comm_ratio`` (dense / sent), ``comm_dropped_rows``; in shadow mode
    also ``shadow_agreement``, ``shadow_cosine``, ``shadow_bytes_sent``,
    ``shadow_message_bytes``, ``shadow_steps`` (TensorBoard: ``comm/*``,
    ``shadow/*``).

    Args:
      log_dir: optional folder for TensorBoard scalars (``comm/*``).
      update_freq: ``"epoch"`` (default) or ``"batch"`` (per-batch logs).

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

    def _log(self, logs, step):
        stats = communication_stats(self.model.optimizer)
        if stats is None or logs is None:
            return
        values = {key: stats[key[len("comm_"):]] for key in LOG_KEYS}
        values.update({k: v for k, v in stats.items()
                       if k.startswith("shadow_")})
        logs.update(values)
        if self.log_dir:
            if self._writer is None:
                self._writer = tf.summary.create_file_writer(self.log_dir)
            with self._writer.as_default():
                for key, value in values.items():
                    group, _, name = key.partition("_")
                    tf.summary.scalar(f"{group}/{name}", float(value),
                                      step=step)
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


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` with one directory per worker.

    Keras 3's callback writes ``latest.weights.h5`` with
    ``model.save_weights`` from every worker alike. Weights are identical
    on all workers, but each worker's error-feedback memories are its own:
    worker ``i`` of a multi-worker job gets ``<backup_dir>/worker_<i>``, so
    each saves, and on restart restores, exactly its own memories
    (single-host jobs use ``backup_dir`` itself).

    Keras 3.15 resumes at the start of the epoch after the last backup (the
    batch counter it saves is not used to skip batches): with
    ``save_freq="epoch"`` and a deterministic input order an interrupted
    run resumed this way ends with the weights of an uninterrupted one.

    Args: as ``keras.callbacks.BackupAndRestore``.

    Example:

    >>> cb = BackupAndRestore("/tmp/backup", save_freq="epoch")
    >>> # model.fit(x, y, epochs=10, callbacks=[cb]); after a crash, run the
    >>> # same command again: it resumes after the last completed epoch.
    """

    def on_train_begin(self, logs=None):
        index, count = worker_index(self.model.distribute_strategy)
        if count > 1:
            _patches.point_backup_to(
                self, os.path.join(self.backup_dir, f"worker_{index}"))
        super().on_train_begin(logs)


def read_backup_metadata(backup_dir: str) -> dict | None:
    """The epoch/batch a backup directory holds (None if there is none)."""
    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)
