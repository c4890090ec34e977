"""Training one candidate of a trial, and the short learning-rate search of
the sign methods.

Every candidate starts from the same weights (the user's ``build`` is
called with the same seed) and sees the same batches in the same order
(the data is batched once, deterministically, and never shuffled here);
its optimizer is a fresh copy of the user's, wrapped in
:class:`~tf_sparsesign.SparseSignOptimizer` with the candidate's settings
(``dense=True`` for the baseline), under the trial's strategy.
"""

from __future__ import annotations

import dataclasses
import math
import time

import keras
import numpy as np
import tensorflow as tf

from ..accounting import communication_stats
from ..integration.optimizer import SparseSignOptimizer

#: Steps at the start of a run whose times are not counted (tracing).
WARMUP_STEPS = 3
#: The sign methods' learning-rate search: a coarse grid, then a refinement
#: around its best (the grid is extended by a decade when its best is at
#: an edge), each run ``search_steps`` long, judged by the mean training
#: loss of its last :data:`SEARCH_TAIL` steps.
COARSE_RATES = (1e-4, 1e-3, 1e-2)
SEARCH_TAIL = 5
#: Runs of a search when the coarse best is inside the grid.
SEARCH_RUNS = len(COARSE_RATES) + 2


@dataclasses.dataclass
class Run:
    """What one candidate did: per step ``losses`` and ``seconds``,
    ``validation`` ``[(step, loss)]``, the median step time, the bytes a
    worker sent per step, the learning rate used and the workers."""

    name: str
    settings: dict
    lr: float
    losses: list
    seconds: list
    validation: list
    bytes_per_step: float
    message_bytes: int
    params: int
    replicas: int
    searched: list = dataclasses.field(default_factory=list)

    @property
    def step_seconds(self) -> float:
        """Median seconds per step (after the first steps' tracing)."""
        timed = self.seconds[WARMUP_STEPS:] or self.seconds
        return float(np.median(timed)) if timed else float("nan")

    @property
    def diverged(self) -> bool:
        """Non-finite losses, or the last tenth of the run well above the
        first step's loss (the initial weights')."""
        losses = np.asarray(self.losses, np.float64)
        if not len(losses) or not np.all(np.isfinite(losses)):
            return True
        tenth = max(1, len(losses) // 10)
        return losses[-tenth:].mean() > 1.5 * losses[0]


class _StepLog(keras.callbacks.Callback):
    """Each step's training loss and wall seconds; advances ``progress``
    (a ``keras.utils.Progbar`` over the whole trial, or None)."""

    def __init__(self, progress=None):
        super().__init__()
        self.losses, self.seconds = [], []
        self.progress = progress

    def on_train_batch_begin(self, batch, logs=None):
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self._t0)
        self.losses.append(float((logs or {}).get("loss", float("nan"))))
        if self.progress is not None:
            self.progress.add(1, [("loss", self.losses[-1])])


def batches(data, batch_size: int):
    """``data`` as an endless, deterministic dataset of batches: a
    ``tf.data.Dataset`` (of batches) as given, repeated; ``(x, y)`` arrays
    batched in order."""
    if isinstance(data, tf.data.Dataset):
        return data.repeat()
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError("train data must be a tf.data.Dataset of (x, y) "
                         "batches or a tuple (x, y) of arrays, got "
                         f"{type(data).__name__}")
    return tf.data.Dataset.from_tensor_slices(tuple(data)).batch(
        batch_size, drop_remainder=True).repeat()


def train(build, name: str, settings: dict, lr, steps: int, strategy,
          batch_size: int, seed: int, eval_every: int | None = None,
          progress=None) -> Run:
    """Trains one candidate ``steps`` steps (see the module docstring);
    ``lr`` None keeps the user's optimizer's rate; validation data (the
    third item ``build`` returns, if any) every ``eval_every`` steps."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    with strategy.scope():
        keras.utils.set_random_seed(seed)
        built = build()
        model, data = built[0], built[1]
        validation_data = built[2] if len(built) > 2 else None
        config = keras.saving.deserialize_keras_object(
            model.get_compile_config())
        inner = config["optimizer"]
        if lr is not None:
            inner.learning_rate = float(lr)
        config["optimizer"] = SparseSignOptimizer(inner, **settings)
        model.compile(**config)
    log = _StepLog(progress)
    every = eval_every or steps
    history = model.fit(batches(data, batch_size), steps_per_epoch=every,
                        epochs=math.ceil(steps / every), verbose=0,
                        shuffle=False,
                        validation_data=validation_data, callbacks=[log])
    done = len(log.losses)
    validation = [(min(every * (i + 1), done), float(v)) for i, v in
                  enumerate(history.history.get("val_loss", []))]
    stats = communication_stats(model.optimizer)
    return Run(name, dict(settings),
               float(keras.ops.convert_to_numpy(inner.learning_rate)),
               log.losses[:steps], log.seconds[:steps], validation,
               stats["bytes_sent"] / max(stats["steps"], 1),
               stats["message_bytes"], int(model.count_params()),
               strategy.num_replicas_in_sync)


def tail_loss(losses, tail: int = SEARCH_TAIL) -> float:
    """Mean of the last ``tail`` losses (inf when any is not finite)."""
    last = np.asarray(losses[-tail:], np.float64)
    return float(last.mean()) if np.all(np.isfinite(last)) and \
        len(last) else float("inf")


def search_rate(score, coarse=COARSE_RATES) -> tuple:
    """``(best rate, [(rate, score)])``: ``score(rate)`` on the coarse grid
    (extended by a decade while its best is at an edge, twice at most),
    then at a third and three times the best."""
    tried = {}

    def at(rate):
        rate = float(f"{rate:.3g}")
        if rate not in tried:
            tried[rate] = score(rate)
        return tried[rate]

    grid = list(coarse)
    for _ in range(3):
        for rate in grid:
            at(rate)
        best = min(tried, key=tried.get)
        if best == min(tried):
            grid = [best / 10]
        elif best == max(tried):
            grid = [best * 10]
        else:
            break
    best = min(tried, key=tried.get)
    at(best / 3)
    at(best * 3)
    best = min(tried, key=tried.get)
    return best, sorted(tried.items())
