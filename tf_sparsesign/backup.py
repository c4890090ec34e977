"""BackupAndRestore that keeps every worker's error-feedback memory.

Keras 3's ``BackupAndRestore`` writes ``latest.weights.h5`` with
``model.save_weights`` from every worker alike. Weights are identical on all
workers, but each worker's error-feedback memories are its own: this
subclass gives worker ``i`` of a multi-worker job its own directory
``<backup_dir>/worker_<i>`` so each worker saves, and on restart restores,
exactly its own memories (single-host jobs use ``backup_dir`` itself).

Note: Keras 3.15 resumes at the start of the epoch after the last backup
(the batch counter it saves is not used to skip batches). With
``save_freq="epoch"`` and a deterministic input order, an interrupted run
resumed this way ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import os

import keras
from keras.src.utils import file_utils


def worker_index(strategy) -> tuple[int, int]:
    """(this worker's index, number of workers) of ``strategy``."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 0, 1
    spec = resolver.cluster_spec().as_dict() if resolver.cluster_spec() \
        else {}
    workers = len(spec.get("worker", [])) + len(spec.get("chief", []))
    task_type = getattr(resolver, "task_type", None)
    task_id = int(getattr(resolver, "task_id", 0) or 0)
    if task_type == "worker" and spec.get("chief"):
        task_id += 1  # the chief is worker 0
    return task_id, max(workers, 1)


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` with one directory per worker.

    Args: as ``keras.callbacks.BackupAndRestore``.

    Example:

    >>> cb = BackupAndRestore("/tmp/backup", save_freq="epoch")
    >>> # model.fit(x, y, epochs=10, callbacks=[cb]); after a crash, run the
    >>> # same command again: it resumes after the last completed epoch.
    """

    def on_train_begin(self, logs=None):
        index, count = worker_index(self.model.distribute_strategy)
        if count > 1:
            self._use_dir(file_utils.join(self.backup_dir, f"worker_{index}"))
        super().on_train_begin(logs)

    def _use_dir(self, directory: str) -> None:
        self.backup_dir = directory
        self._weights_path = file_utils.join(directory, "latest.weights.h5")
        self._training_metadata_path = file_utils.join(
            directory, "training_metadata.json")
        self._prev_weights_path = f"{self._weights_path}.bkp"
        self._prev_training_metadata_path = (
            f"{self._training_metadata_path}.bkp")


def read_metadata(backup_dir: str) -> dict | None:
    """The epoch/batch a backup directory holds (None if there is none)."""
    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)
