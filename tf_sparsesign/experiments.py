"""``tf-sparsesign sweep``: train one model with several methods, log it all.

Every run goes through the library's real code path: a
:class:`~tf_sparsesign.SparseSignStrategy` over ``M`` logical CPU devices
(one replica per worker), a plain ``keras.optimizers.SGD(lr)`` built under
its scope (so it votes), and a custom training loop: each step is one
``strategy.run`` in which replica ``r`` gathers *worker r's own* batch
(``replica_id_in_sync_group`` indexes a ``[M, batch]`` array of training-set
indices drawn from worker r's shard, see :mod:`tf_sparsesign.datasets`),
computes its gradient of ``mean cross-entropy / M`` and calls
``optimizer.apply_gradients`` (dense: the SUM all-reduce gives the mean
gradient, as in ``model.fit``). ``eval_every`` steps run inside one
``tf.function`` (a ``tf.range`` loop); the communication counters are read
from :func:`tf_sparsesign.accounting.communication_stats` at every
evaluation point.

Methods (``--methods``): ``dense`` (``dense=True``: the Keras dense
all-reduce), ``signsgd`` (signSGD-MV: ``density=1``, no error feedback),
``s3gd`` / ``s3gd-noef`` (S3GD-MV with / without error feedback at each of
``--densities``), ``topk`` (top-K SGD with error feedback sending values,
``method="topk_values"``), ``randomk`` (``method="random_k"``, no memory).

CSV columns (one row per evaluation point, :data:`COLUMNS`):

* ``data, split, labels_per_worker, workers, hidden, params, batch,
  steps_total`` — the setting (``params`` = trainable coordinates N);
* ``method`` (dense, signsgd_mv, s3gd_mv, topk_values, random_k),
  ``label``, ``density``, ``error_feedback``, ``lr``, ``seed``;
* ``step``, ``test_accuracy``, ``test_loss`` (on the whole test set),
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

import csv
import dataclasses
import os
import time
from typing import Callable, Iterable, Sequence

import numpy as np

from . import datasets

COLUMNS = ("data", "split", "labels_per_worker", "workers", "hidden",
           "params", "batch", "steps_total", "method", "label", "density",
           "error_feedback", "lr", "seed", "step", "test_accuracy",
           "test_loss", "train_loss", "bits_sent_per_worker",
           "message_bits_per_worker", "dense_bits_per_worker", "wall_s")

METHOD_NAMES = ("dense", "signsgd", "s3gd", "s3gd-noef", "topk", "randomk")

#: Default learning-rate grids per method family (sign methods move every
#: chosen coordinate by exactly lr, so they need much smaller rates).
DEFAULT_LRS = {
    "dense": (0.03, 0.1, 0.3),
    "signsgd": (1e-4, 3e-4, 1e-3),
    "s3gd": (1e-3, 3e-3, 1e-2),
    "s3gd-noef": (1e-3, 3e-3, 1e-2),
    "topk": (0.3, 1.0, 3.0),
    "randomk": (1e-3, 3e-3, 1e-2),
}


@dataclasses.dataclass(frozen=True)
class Method:
    """One compared method; ``family`` is a key of :data:`DEFAULT_LRS`.

    >>> Method("s3gd", 0.01).label
    'S3GD-MV 1% EF'
    """

    family: str
    density: float = 1.0

    def __post_init__(self):
        if self.family not in METHOD_NAMES:
            raise ValueError(f"unknown method {self.family!r}; expected one "
                             f"of {METHOD_NAMES}")
        if not 0 < self.density <= 1:
            raise ValueError(f"density must be in (0, 1], got "
                             f"{self.density}")

    @property
    def name(self) -> str:
        return {"dense": "dense", "signsgd": "signsgd_mv", "s3gd": "s3gd_mv",
                "s3gd-noef": "s3gd_mv", "topk": "topk_values",
                "randomk": "random_k"}[self.family]

    @property
    def error_feedback(self) -> bool:
        return self.family in ("s3gd", "topk")

    @property
    def label(self) -> str:
        pct = f"{self.density * 100:g}%"
        return {"dense": "dense SGD", "signsgd": "signSGD-MV",
                "s3gd": f"S3GD-MV {pct} EF",
                "s3gd-noef": f"S3GD-MV {pct} no EF",
                "topk": f"top-K values {pct} EF",
                "randomk": f"random-K {pct}"}[self.family]

    def strategy(self, devices, seed: int = 0):
        """A fresh :class:`~tf_sparsesign.SparseSignStrategy` for this
        method over ``devices``."""
        from .strategy import SparseSignStrategy

        if self.family == "dense":
            s = SparseSignStrategy(dense=True, devices=devices)
        else:
            method = {"topk": "topk_values",
                      "randomk": "random_k"}.get(self.family, "sign_vote")
            s = SparseSignStrategy(self.density,
                                   error_feedback=self.error_feedback,
                                   method=method, devices=devices)
        # random_k's coordinate choice follows the run's seed.
        s.sparse_sign_config = dataclasses.replace(s.sparse_sign_config,
                                                   seed=int(seed))
        return s


def expand_methods(names: Sequence[str], densities: Sequence[float],
                   baseline_density: float = 0.01) -> list[Method]:
    """The runs' methods: s3gd/s3gd-noef once per density, topk/randomk at
    ``baseline_density``; ``name:d1,d2`` gives a method its own densities.

    >>> [m.label for m in expand_methods(["dense", "s3gd"], [0.01, 0.1])]
    ['dense SGD', 'S3GD-MV 1% EF', 'S3GD-MV 10% EF']
    >>> [m.label for m in expand_methods(["s3gd-noef:0.01"], [0.1])]
    ['S3GD-MV 1% no EF']
    """
    out = []
    for token in names:
        name, _, own = token.partition(":")
        if own:  # "s3gd-noef:0.01" or "topk:0.01,0.1": densities of its own
            out += [Method(name, float(d)) for d in own.split(",")]
        elif name in ("s3gd", "s3gd-noef"):
            out += [Method(name, float(d)) for d in densities]
        elif name in ("topk", "randomk"):
            out.append(Method(name, float(baseline_density)))
        else:
            out.append(Method(name))
    return out


@dataclasses.dataclass(frozen=True)
class Setting:
    """Everything that defines one training run (one CSV key)."""

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

    def key(self) -> tuple:
        return _key(self.data, self.split, self.labels_per_worker,
                    self.workers, self.hidden, self.batch, self.steps,
                    self.method.name, self.method.density,
                    self.method.error_feedback, self.lr, self.seed)


def _key(*parts) -> tuple:
    def norm(p):
        if isinstance(p, bool):
            return str(p)
        if isinstance(p, (int, float, np.floating, np.integer)):
            return f"{float(p):.6g}"
        return str(p)
    return tuple(norm(p) for p in parts)


def row_key(row: dict) -> tuple:
    """The :meth:`Setting.key` of a CSV row."""
    return _key(row["data"], row["split"], int(row["labels_per_worker"]),
                int(row["workers"]), int(row["hidden"]), int(row["batch"]),
                int(row["steps_total"]), row["method"],
                float(row["density"]), row["error_feedback"] == "True",
                float(row["lr"]), int(row["seed"]))


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


def build_model(inputs: int, hidden: int, classes: int):
    """The MLP every method trains: Dense(hidden, relu) -> Dense(classes)."""
    import keras

    return keras.Sequential([keras.Input((inputs,)),
                             keras.layers.Dense(hidden, activation="relu"),
                             keras.layers.Dense(classes)])


def train(data: datasets.Data, setting: Setting, devices: Sequence[str],
          eval_every: int, on_progress: Callable[[int], None] | None = None
          ) -> tuple[list[dict], dict]:
    """Runs one setting; returns (CSV rows, final communication stats)."""
    import keras
    import tensorflow as tf

    from .accounting import communication_stats

    s, m = setting, setting.workers
    if eval_every <= 0:
        raise ValueError(f"eval_every must be positive, got {eval_every}")
    shards = datasets.split_workers(data.y_train, m, s.split,
                                    s.labels_per_worker, seed=s.seed)
    indices = datasets.batch_indices(shards, s.steps, s.batch, seed=s.seed)
    keras.utils.set_random_seed(s.seed)
    strategy = s.method.strategy(list(devices), seed=s.seed)
    with strategy.scope():
        model = build_model(data.x_train.shape[1], s.hidden,
                            data.num_classes)
        opt = keras.optimizers.SGD(s.lr)
        opt.build(model.trainable_variables)
    params = int(sum(np.prod(v.shape) for v in model.trainable_variables))
    x_train = tf.constant(data.x_train)
    y_train = tf.constant(data.y_train)
    x_test, y_test = tf.constant(data.x_test), tf.constant(data.y_test)

    def step_fn(idx_t):
        r = tf.distribute.get_replica_context().replica_id_in_sync_group
        i = tf.gather(idx_t, r)                    # worker r's own batch
        xb, yb = tf.gather(x_train, i), tf.gather(y_train, i)
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

    @tf.function
    def evaluate():
        logits = model(x_test, training=False)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(y_test, logits))
        hit = tf.equal(tf.argmax(logits, 1), y_test)
        return tf.reduce_mean(tf.cast(hit, tf.float32)), loss

    base = {"data": data.name, "split": s.split,
            "labels_per_worker": s.labels_per_worker, "workers": m,
            "hidden": s.hidden, "params": params, "batch": s.batch,
            "steps_total": s.steps, "method": s.method.name,
            "label": s.method.label, "density": s.method.density,
            "error_feedback": s.method.error_feedback, "lr": s.lr,
            "seed": s.seed}
    zero = {"steps": 0, "message_bytes": 0, "bytes_sent": 0,
            "dense_bytes": 0}
    rows, start, step, train_loss = [], time.perf_counter(), 0, float("nan")
    stats = zero
    while True:
        acc, loss = evaluate()
        rows.append({**base, "step": step, "test_accuracy": float(acc),
                     "test_loss": float(loss), "train_loss": train_loss,
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
    from . import policy

    if method.family == "dense":
        return policy.bits_dense(params) * stats["steps"]
    return 8 * stats["message_bytes"] * stats["steps"]


# -- the sweep ------------------------------------------------------------

def read_rows(path: str) -> list[dict]:
    """The CSV's rows (empty when the file does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def append_rows(path: str, rows: Iterable[dict]) -> None:
    """Appends rows (writing the header for a new file)."""
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            w.writeheader()
        for row in rows:
            w.writerow({k: row[k] for k in COLUMNS})


def final_accuracy(rows: list[dict], key: tuple) -> float | None:
    """Test accuracy at the last step of the run with ``key``."""
    done = [r for r in rows if row_key(r) == key and
            int(r["step"]) == int(r["steps_total"])]
    return float(done[-1]["test_accuracy"]) if done else None


@dataclasses.dataclass
class SweepConfig:
    """The sweep's settings (the CLI flags)."""

    data: str = "digits"
    splits: tuple = ("iid",)
    labels_per_worker: int = 2
    workers: int = 4
    hidden: int = 32
    batch: int = 32
    steps: int = 200
    eval_every: int = 50
    methods: tuple = ("dense", "signsgd", "s3gd")
    densities: tuple = (0.01,)
    baseline_density: float = 0.01
    lrs: dict = dataclasses.field(default_factory=dict)
    seeds: tuple = (0,)
    out: str = "sweep-out"

    def lr_grid(self, method: Method) -> tuple:
        return tuple(self.lrs.get(method.family,
                                  DEFAULT_LRS[method.family]))


def run_sweep(cfg: SweepConfig, progress: bool = True,
              log: Callable[[str], None] = print, report: bool = True) -> str:
    """Runs every missing setting of ``cfg``, then writes the report.

    Learning rate: for each (split, method) every rate of the grid runs on
    the first seed; the one with the best final test accuracy (ties: the
    smaller rate) runs on the other seeds. Settings whose final row is
    already in ``<out>/results.csv`` are skipped, so an interrupted sweep
    resumes where it stopped. Returns the CSV path.
    """
    os.makedirs(cfg.out, exist_ok=True)
    path = os.path.join(cfg.out, "results.csv")
    devices = ensure_devices(cfg.workers)
    data = datasets.load(cfg.data)
    methods = expand_methods(cfg.methods, cfg.densities, cfg.baseline_density)
    rows = read_rows(path)
    done = {row_key(r) for r in rows if int(r["step"]) == int(
        r["steps_total"])}

    def setting(split, method, lr, seed):
        return Setting(cfg.data, split, cfg.labels_per_worker, cfg.workers,
                       cfg.hidden, cfg.batch, cfg.steps, method, float(lr),
                       int(seed))

    plan = [(split, m) for split in cfg.splits for m in methods]
    total = sum(len(cfg.lr_grid(m)) + len(cfg.seeds) - 1 for _, m in plan)
    bar = _bar(total * cfg.steps, progress)
    first, others = cfg.seeds[0], cfg.seeds[1:]
    try:
        for split, method in plan:
            grid = cfg.lr_grid(method)
            for lr in grid:
                rows += _run_once(data, setting(split, method, lr, first),
                                  devices, cfg, done, path, bar, log)
            accs = [(final_accuracy(rows, setting(split, method, lr,
                                                  first).key()), -lr, lr)
                    for lr in grid]
            best = max(accs)[2]
            for seed in others:
                rows += _run_once(data, setting(split, method, best, seed),
                                  devices, cfg, done, path, bar, log)
    finally:
        bar.close()
    if report:
        from . import reporting  # matplotlib only now

        reporting.write_report(cfg, read_rows(path))
    return path


def _run_once(data, s: Setting, devices, cfg, done, path, bar, log):
    if s.key() in done:
        bar.update(s.steps)
        return []
    bar.set_description(f"{s.split} {s.method.label} lr={s.lr:g} "
                        f"seed={s.seed}")
    rows, _ = train(data, s, devices, cfg.eval_every, bar.update)
    append_rows(path, rows)
    done.add(s.key())
    last = rows[-1]
    log(f"{s.split:6s} {s.method.label:22s} lr={s.lr:<7g} seed={s.seed} "
        f"acc={last['test_accuracy']:.4f} "
        f"bits/worker={last['bits_sent_per_worker']:.3e} "
        f"({last['wall_s']:.1f} s)")
    return [{k: str(v) for k, v in r.items()} for r in rows]


class _NoBar:
    def update(self, n=1):
        pass

    def set_description(self, text):
        pass

    def close(self):
        pass


def _bar(total, progress):
    if not progress:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="step", dynamic_ncols=True)
