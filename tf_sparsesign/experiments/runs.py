"""One training run of a sweep: a method, a data split, a seed -> CSV rows.

Every run goes through the library's real code path: a
:class:`~tf_sparsesign.SparseSignStrategy` over ``M`` logical CPU devices
(one replica per worker), the method's optimizer (:mod:`.optimizers`,
``keras.optimizers.SGD(lr)`` unless the method names another) built under
its scope (so it votes), and a custom training loop: each step is one
``strategy.run`` in which replica ``r`` gathers *worker r's own* batch
(``replica_id_in_sync_group`` indexes a ``[M, batch]`` array of indices
from the task, :mod:`.tasks`: training-set indices drawn from worker r's
shard, or window starts in a text), computes its gradient of ``mean
cross-entropy / M`` and calls
``optimizer.apply_gradients`` (dense: the SUM all-reduce gives the mean
gradient, as in ``model.fit``). ``eval_every`` steps run inside one
``tf.function`` (a ``tf.range`` loop); the communication counters are read
from :func:`tf_sparsesign.accounting.communication_stats` at every
evaluation point.

The methods compared are in :mod:`.methods`.

CSV columns (one row per evaluation point, :data:`COLUMNS`):

* ``data, split, labels_per_worker, workers, hidden, params, batch,
  steps_total`` — the setting (``params`` = trainable coordinates N);
* ``model`` (:data:`.models.MODELS`; ``hidden`` only matters for the MLP),
  ``options`` — extra settings of the run, ``name=value`` pairs joined by
  ``;`` (:func:`.arguments.format_options`): strategy settings such as
  ``vote=fd``, ``momentum=`` / ``lr_schedule=`` of the optimizer
  (:data:`.optimizers.OPTIMIZER_OPTIONS`) and the task's own
  (:data:`.tasks.TEXT_OPTIONS`); empty for the plain methods;
* ``optimizer`` (:data:`.optimizers.OPTIMIZERS`), ``weight_decay``;
* ``test_bits_per_byte`` — held-out bits per byte of a text run (empty
  for classification). Columns missing from an older CSV read as
  :data:`DEFAULTS` (``mlp``, no options, ``sgd``, no weight decay);
* ``method`` (dense, signsgd_mv, s3gd_mv, topk_values, random_k),
  ``label``, ``density``, ``error_feedback``, ``lr``, ``seed``;
* ``step``, ``test_accuracy``, ``test_loss`` (on the whole test set;
  text: next-byte accuracy and cross-entropy in nats on the held-out
  windows),
  ``train_loss`` (mean over workers and the steps since the last point);
* ``bits_sent_per_worker`` — cumulative bits that crossed one worker's link,
  exactly ``8 * communication_stats(optimizer)["bytes_sent"]`` (dense: ring
  all-reduce ``2(M-1)/M * 4N`` bytes per step; voting: ring all-gather,
  ``(M-1)`` times the actual int32 message);
* ``message_bits_per_worker`` — cumulative bits of the worker's own
  messages (uplink), ``8 * message_bytes * steps``;
* ``dense_bits_per_worker`` — ``8 * dense_bytes``: what the dense ring
  all-reduce would have sent in the same steps;
* ``wall_s`` — seconds since the run started.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable, Sequence

import numpy as np

from . import optimizers, tasks
from .arguments import format_options, parse_options  # noqa: F401
from .methods import Method

COLUMNS = ("data", "split", "labels_per_worker", "workers", "hidden",
           "params", "batch", "steps_total", "method", "label", "density",
           "error_feedback", "lr", "seed", "step", "test_accuracy",
           "test_loss", "train_loss", "bits_sent_per_worker",
           "message_bits_per_worker", "dense_bits_per_worker", "wall_s",
           "model", "options", "optimizer", "weight_decay",
           "test_bits_per_byte")
#: Values of the columns older CSVs lack.
DEFAULTS = {"model": "mlp", "options": "", "optimizer": "sgd",
            "weight_decay": "0", "test_bits_per_byte": ""}
OPTIMIZER_OPTIONS = optimizers.OPTIMIZER_OPTIONS


@dataclasses.dataclass(frozen=True)
class Setting:
    """Everything that defines one training run (one CSV key); the
    optimizer is the method's (:attr:`.methods.Method.optimizer`)."""

    data: str
    split: str
    labels_per_worker: int
    workers: int
    hidden: int
    batch: int
    steps: int
    method: Method
    lr: float
    seed: int
    model: str = "mlp"
    options: str = ""
    weight_decay: float = 0.0

    def key(self) -> tuple:
        return normalize_key(
            self.data, self.split, self.labels_per_worker, self.workers,
            self.hidden, self.batch, self.steps, self.method.name,
            self.method.density, self.method.error_feedback, self.lr,
            self.seed, self.model, self.options, self.method.optimizer,
            self.weight_decay)


def normalize_key(*parts) -> tuple:
    """CSV key parts as text (numbers in one format, so ``0.1`` read back
    from a CSV equals the float it was written from)."""
    def norm(p):
        if isinstance(p, bool):
            return str(p)
        if isinstance(p, (int, float, np.floating, np.integer)):
            return f"{float(p):.6g}"
        return str(p)
    return tuple(norm(p) for p in parts)


def column(row: dict, name: str) -> str:
    """``row[name]``, or its :data:`DEFAULTS` value where an older CSV had
    no such column.

    >>> column({"optimizer": "lion"}, "optimizer"), column({}, "optimizer")
    ('lion', 'sgd')
    """
    return row.get(name) or DEFAULTS[name]


def row_key(row: dict) -> tuple:
    """The :meth:`Setting.key` of a CSV row."""
    return normalize_key(
        row["data"], row["split"], int(row["labels_per_worker"]),
        int(row["workers"]), int(row["hidden"]), int(row["batch"]),
        int(row["steps_total"]), row["method"], float(row["density"]),
        row["error_feedback"] == "True", float(row["lr"]), int(row["seed"]),
        column(row, "model"), column(row, "options"),
        column(row, "optimizer"), float(column(row, "weight_decay")))


def score(row: dict) -> float:
    """Higher is better: ``-test_bits_per_byte`` for a text run, else the
    test accuracy.

    >>> score({"test_accuracy": "0.9", "test_bits_per_byte": ""})
    0.9
    >>> score({"test_accuracy": "0.4", "test_bits_per_byte": "3.25"})
    -3.25
    """
    bpb = row.get("test_bits_per_byte")
    if bpb not in (None, "", "nan") and not (
            isinstance(bpb, float) and math.isnan(bpb)):
        return -float(bpb)
    return float(row["test_accuracy"])


def ensure_devices(workers: int) -> list[str]:
    """``workers`` logical CPU device names, creating them if TensorFlow
    has not initialised its devices yet."""
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    if tf.config.get_logical_device_configuration(cpus[0]) is None:
        try:
            tf.config.set_logical_device_configuration(
                cpus[0], [tf.config.LogicalDeviceConfiguration()] * workers)
        except RuntimeError:
            pass  # TensorFlow already initialised its devices: check below
    have = len(tf.config.list_logical_devices("CPU"))
    if have < workers:
        raise RuntimeError(
            f"tf_sparsesign sweep: {workers} workers need {workers} logical "
            f"CPU devices but TensorFlow was initialised with {have}; run "
            "the sweep in a fresh process (or configure the devices with "
            "tf.config.set_logical_device_configuration before using TF)")
    return [f"/cpu:{i}" for i in range(workers)]


def train(data, setting: Setting, devices: Sequence[str], eval_every: int,
          on_progress: Callable[[int], None] | None = None,
          **settings) -> tuple[list[dict], dict]:
    """Runs one setting on ``data`` (a :class:`.datasets.Data` or a
    :class:`.text.TextData`, see :mod:`.tasks`); returns (CSV rows, final
    communication stats).

    ``settings`` go to the strategy besides the method's own and the
    setting's ``options`` (e.g. ``vote="fd"``, ``adversary=...``);
    ``momentum`` / ``lr_schedule`` in the options go to the optimizer, the
    task's own options to the task."""
    import keras
    import tensorflow as tf

    from ..accounting import communication_stats

    s, m = setting, setting.workers
    if eval_every <= 0:
        raise ValueError(f"eval_every must be positive, got {eval_every}")
    options = parse_options(s.options)
    opt_options = {k: options.pop(k) for k in OPTIMIZER_OPTIONS
                   if k in options}
    task = tasks.make(data, s, options)
    indices = task.indices()
    keras.utils.set_random_seed(s.seed)
    strategy = s.method.strategy(list(devices), seed=s.seed,
                                 **{**options, **settings})
    with strategy.scope():
        model = task.model()
        opt = optimizers.build(s.method.optimizer, s.lr, s.steps,
                               s.weight_decay, **opt_options)
        opt.build(model.trainable_variables)
    params = int(sum(np.prod(v.shape) for v in model.trainable_variables))

    def step_fn(idx_t):
        r = tf.distribute.get_replica_context().replica_id_in_sync_group
        xb, yb = task.batch(tf.gather(idx_t, r))   # worker r's own batch
        with tf.GradientTape() as tape:
            logits = model(xb, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(yb, logits))
            scaled = loss / m                      # SUM all-reduce = mean
        grads = tape.gradient(scaled, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return scaled

    @tf.function(input_signature=[tf.TensorSpec([None, m, s.batch],
                                                tf.int32)])
    def run_chunk(idx):
        total = tf.constant(0.0)
        n = tf.shape(idx)[0]
        for t in tf.range(n):
            per_replica = strategy.run(step_fn, args=(idx[t],))
            total += strategy.reduce("SUM", per_replica, axis=None)
        return total / tf.cast(n, tf.float32)

    evaluate = tf.function(lambda: task.evaluate(model))
    base = {"data": data.name, "split": s.split,
            "labels_per_worker": s.labels_per_worker, "workers": m,
            "hidden": s.hidden, "params": params, "batch": s.batch,
            "steps_total": s.steps, "method": s.method.name,
            "label": s.method.label, "density": s.method.density,
            "error_feedback": s.method.error_feedback, "lr": s.lr,
            "seed": s.seed, "model": s.model, "options": s.options,
            "optimizer": s.method.optimizer,
            "weight_decay": s.weight_decay}
    stats = {"steps": 0, "message_bytes": 0, "bytes_sent": 0,
             "dense_bytes": 0}
    rows, start, step, train_loss = [], time.perf_counter(), 0, float("nan")
    while True:
        acc, loss, bpb = (float(v) for v in evaluate())
        rows.append({**base, "step": step, "test_accuracy": acc,
                     "test_loss": loss, "train_loss": train_loss,
                     "test_bits_per_byte": "" if math.isnan(bpb) else bpb,
                     "bits_sent_per_worker": 8 * stats["bytes_sent"],
                     "message_bits_per_worker": _message_bits(
                         s.method, stats, params),
                     "dense_bits_per_worker": 8 * stats["dense_bytes"],
                     "wall_s": round(time.perf_counter() - start, 3)})
        if step >= s.steps:
            break
        n = min(eval_every, s.steps - step)
        train_loss = float(run_chunk(tf.constant(indices[step:step + n])))
        step += n
        stats = communication_stats(opt)
        if stats["steps"] != step:
            raise RuntimeError(f"accounting counted {stats['steps']} steps "
                               f"after {step} training steps")
        if on_progress is not None:
            on_progress(n)
    return rows, stats


def _message_bits(method: Method, stats: dict, params: int) -> int:
    """Cumulative uplink bits of one worker. Voting methods: the counter's
    last message size times the steps (the size is fixed per run). Dense:
    ``32 N`` per step (:func:`policy.bits_dense`; the dense path's
    ``message_bytes`` counter accumulates instead of holding the last
    message, so it is not used here)."""
    from .. import policy

    if method.family == "dense":
        return policy.bits_dense(params) * stats["steps"]
    return 8 * stats["message_bytes"] * stats["steps"]
