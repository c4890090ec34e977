"""What a sweep run trains on: a classification data set or a text corpus.

A task gives the driver (:func:`.runs.train`) its model, the data order
(``[steps, M, batch]`` indices, the same for every method at a seed), the
batch a replica gathers from its row of indices, and the held-out metrics
(``test_accuracy``, ``test_loss`` in nats, ``test_bits_per_byte``; the last
is ``nan`` for classification). The loss is the mean cross-entropy in both.

* :class:`Images` — :mod:`.datasets` (worker shards from
  :func:`.datasets.split_workers`, batches from
  :func:`.datasets.batch_indices`);
* :class:`Text` — :mod:`.text` (windows of ``context + 1`` bytes from
  :func:`.text.batch_starts`; test metrics on the held-out windows:
  next-byte accuracy, cross-entropy, bits per byte). Its option
  ``eval_windows=N`` (in ``--options``) evaluates on the first N held-out
  windows only (for quick checks; the default is all of them).
"""

from __future__ import annotations

import math

from . import datasets, text
from .models import build_model

#: Options a text run takes itself (not the strategy's).
TEXT_OPTIONS = ("eval_windows",)


def make(data, setting, options: dict):
    """The task of ``data`` (a :class:`.datasets.Data` or
    :class:`.text.TextData`) for ``setting``; pops the task's own entries
    from ``options``."""
    if isinstance(data, text.TextData):
        if setting.model != "gpt":
            raise ValueError(f"text data {data.name!r} trains the 'gpt' "
                             f"model, got model {setting.model!r}")
        return Text(data, setting, options.pop("eval_windows", None))
    if setting.model == "gpt":
        raise ValueError(f"the gpt model trains on a text corpus "
                         f"{text.CORPORA}, got data {data.name!r}")
    return Images(data, setting)


class Images:
    """A classification data set (:mod:`.datasets`)."""

    def __init__(self, data, setting):
        import tensorflow as tf

        self.data, self.s = data, setting
        self.x_train = tf.constant(data.x_train)
        self.y_train = tf.constant(data.y_train)
        self.x_test = tf.constant(data.x_test)
        self.y_test = tf.constant(data.y_test)

    def model(self):
        """A fresh model (call under the strategy's scope)."""
        return build_model(self.s.model, self.data.x_train.shape[1],
                           self.s.hidden, self.data.num_classes)

    def indices(self):
        s = self.s
        shards = datasets.split_workers(self.data.y_train, s.workers,
                                        s.split, s.labels_per_worker,
                                        seed=s.seed)
        return datasets.batch_indices(shards, s.steps, s.batch, seed=s.seed)

    def batch(self, idx):
        import tensorflow as tf

        return tf.gather(self.x_train, idx), tf.gather(self.y_train, idx)

    def evaluate(self, model):
        import tensorflow as tf

        logits = model(self.x_test, training=False)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            self.y_test, logits))
        hit = tf.equal(tf.argmax(logits, 1), self.y_test)
        return tf.reduce_mean(tf.cast(hit, tf.float32)), loss, math.nan


class Text:
    """Byte-level language modelling on a :class:`.text.TextData`."""

    def __init__(self, data, setting, eval_windows=None):
        import tensorflow as tf

        n = len(data.x_test) if eval_windows is None else int(eval_windows)
        if not 0 < n <= len(data.x_test):
            raise ValueError(f"eval_windows must be in [1, "
                             f"{len(data.x_test)}], got {eval_windows}")
        self.data, self.s = data, setting
        self.tokens = tf.constant(data.train)
        self.x_test = tf.constant(data.x_test[:n])
        self.y_test = tf.constant(data.y_test[:n])

    def model(self):
        return build_model("gpt", self.data.context, 0, self.data.vocab)

    def indices(self):
        s = self.s
        return text.batch_starts(len(self.data.train), self.data.context,
                                 s.workers, s.steps, s.batch, s.split,
                                 seed=s.seed)

    def batch(self, starts):
        return text.windows(self.tokens, starts, self.data.context)

    def evaluate(self, model):
        acc, loss = text.heldout_metrics(model, self.x_test, self.y_test)
        return acc, loss, loss / math.log(2.0)
