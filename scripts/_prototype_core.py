"""The training loop of ``transformer_prototype.py`` (see its docstring for
the methods); not library code."""

from __future__ import annotations

import dataclasses
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

JIT = os.environ.get("PROTO_JIT", "0") == "1"  # XLA was slower here
METHODS = ("dense-adamw", "dense-lion", "s3gd-adamw", "dlion", "dadam")
MEMORIES = ("u", "sign", "grad", "gradraw", "none")


@dataclasses.dataclass
class Config:
    """One run of the prototype."""

    method: str
    lr: float
    density: float = 1.0
    memory: str = "u"
    beta1: float | None = None
    beta2: float | None = None
    wd: float = 0.1
    warmup: float = 0.0
    density_schedule: str = ""
    stages: int = 5
    avg_every: int = 0
    small_dense: int = 0
    vote: str = "sign"
    rate_exponent: float = 0.0
    lr_schedule: str = "constant"
    seed: int = 0
    steps: int = 300
    workers: int = 4
    batch: int = 16
    eval_every: int = 50
    eval_windows: int | None = None

    @property
    def b1(self) -> float:
        return 0.9 if self.beta1 is None else self.beta1

    @property
    def b2(self) -> float:
        if self.beta2 is not None:
            return self.beta2
        return 0.999 if self.method.endswith("adam") or \
            self.method.endswith("adamw") else 0.99

    def density_at(self, step: int) -> float:
        """The density of step ``step`` (warm-up, then the schedule)."""
        if step < round(self.warmup * self.steps):
            return 1.0
        if self.density_schedule:
            d0, d1 = (float(v) for v in self.density_schedule.split(":"))
            w0 = round(self.warmup * self.steps)
            stage = min(self.stages - 1, (step - w0) * self.stages //
                        max(1, self.steps - w0))
            frac = stage / max(1, self.stages - 1)
            return float(d0 * (d1 / d0) ** frac)
        return self.density

    def lr_at(self, step: int) -> float:
        """``lr`` (the rate at the final density), times
        ``(density_now / final density) ** -rate_exponent``, times the
        cosine decay if any."""
        final = self.density_at(self.steps - 1)
        lr = self.lr * (self.density_at(step) / final) ** (
            -self.rate_exponent)
        if self.lr_schedule == "cosine":
            return lr * 0.5 * (1 + math.cos(math.pi * step / self.steps))
        return lr


def tensor_ks(sizes, density, small_dense=0):
    """K_l per tensor: ceil(density n_l); every entry of a tensor of at
    most ``small_dense`` entries."""
    return [s if s <= small_dense else min(s, math.ceil(density * s))
            for s in sizes]


def wire_bytes(sizes, density, workers, small_dense=0):
    """Bytes per worker per step on a ring: (int32 codes, Rice, packed,
    dense fp32). At density 1 the first two are the packed ternary format
    (1.6 bits per coordinate, what the library sends then) or Rice if
    smaller; packed is nan below density 1."""
    n = sum(sizes)
    ks = tensor_ks(sizes, density, small_dense)
    peers = workers - 1
    int32 = peers * 4 * sum(ks)
    rice = peers * sum(k * (math.log2(s / k) + 2.5) for s, k in
                       zip(sizes, ks)) / 8
    dense = 2 * peers / workers * 4 * n
    if density >= 1:            # every sign: the library's packed format
        packed = peers * 1.6 * n / 8
        return packed, min(rice, packed), packed, dense
    return int32, rice, float("nan"), dense


def run(cfg: Config):
    """Trains one run; yields one dict per evaluation point."""
    import keras
    import tensorflow as tf

    from tf_sparsesign.experiments import models, text

    if cfg.method not in METHODS or cfg.memory not in MEMORIES:
        raise ValueError(f"method {cfg.method!r} / memory {cfg.memory!r}: "
                         f"expected one of {METHODS} / {MEMORIES}")
    data = text.load_text("pydoc-topics", 64, cfg.eval_windows)
    keras.utils.set_random_seed(cfg.seed)
    model = models.build_gpt(context=64, vocab=256)
    xs = model.trainable_variables
    sizes = [int(np.prod(v.shape)) for v in xs]
    m_, n_all = cfg.workers, sum(sizes)
    tokens = tf.constant(data.train)
    starts = text.batch_starts(len(data.train), 64, m_, cfg.steps,
                               cfg.batch, "iid", cfg.seed)
    x_test, y_test = tf.constant(data.x_test), tf.constant(data.y_test)
    zeros = lambda lead: [tf.Variable(tf.zeros(lead + [s]))  # noqa: E731
                          for s in sizes]
    mom, mem = zeros([m_]), zeros([m_])        # per worker
    prev, moved = zeros([m_]), zeros([])       # diagnostics
    diag = tf.Variable(tf.zeros([3]))  # repeated sends, sends, moved coords
    var = zeros([m_]) if cfg.method == "dadam" else None
    am, av = zeros([]), zeros([])              # AdamW's moments (server)
    t_adam = tf.Variable(0.0)
    b1, b2 = cfg.b1, cfg.b2

    def worker_grads(st):
        x, y = text.windows(tokens, st, 64)
        per, losses = [], []
        for w in range(m_):
            with tf.GradientTape() as tape:
                logits = model(x[w], training=True)
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(
                        y[w], logits))
            per.append(tape.gradient(loss, xs))
            losses.append(loss)
        g = [tf.reshape(tf.stack([tf.convert_to_tensor(p[i]) for p in per]),
                        [m_, -1]) for i in range(len(xs))]
        return g, tf.add_n(losses) / m_

    def top_mask(score, k, n):
        if k >= n:
            return tf.cast(score > 0, tf.float32)
        _, idx = tf.math.top_k(score, k)           # ties: lower index
        rows = tf.broadcast_to(tf.range(m_)[:, None], [m_, k])
        return tf.scatter_nd(tf.stack([rows, idx], -1),
                             tf.ones([m_, k]), [m_, n])

    def adamw(i, g, lr):
        am[i].assign(0.9 * am[i] + 0.1 * g)
        av[i].assign(b2 * av[i] + (1 - b2) * tf.square(g))
        step = lr * tf.sqrt(1 - b2 ** t_adam) / (1 - 0.9 ** t_adam)
        return step * am[i] / (tf.sqrt(av[i]) + 1e-7)

    def direction(i, c):
        """The worker's direction: Lion's, or (dadam) Adam's
        m_hat / (sqrt(v_hat) + eps) after this step's moment updates."""
        if cfg.method == "dlion":
            return b1 * mom[i] + (1 - b1) * c
        m_new = b1 * mom[i] + (1 - b1) * c
        v_new = b2 * var[i] + (1 - b2) * tf.square(c)
        corr = tf.sqrt(1 - b2 ** t_adam) / (1 - b1 ** t_adam)
        return corr * m_new / (tf.sqrt(v_new) + 1e-7 * corr)

    def compress(i, g, k):
        """Per-worker messages [M, n] of tensor i; updates its memory."""
        n, mode = sizes[i], cfg.memory
        if cfg.method == "s3gd-adamw":
            e = mem[i] + g if mode != "none" else g
            mask = top_mask(tf.abs(e), k, n)
            if mode != "none":
                mem[i].assign(e * (1 - mask))
            return tf.sign(e) * mask, g
        c = mem[i] + g if mode.startswith("grad") else g
        u = direction(i, c)
        if mode in ("u", "sign"):
            e = mem[i] + (u if mode == "u" else tf.sign(u))
            mask = top_mask(tf.abs(e), k, n)
            mem[i].assign(e * (1 - mask))
            return tf.sign(e) * mask, c
        mask = top_mask(tf.abs(u), k, n)
        if mode.startswith("grad"):
            mem[i].assign(c * (1 - mask))
        return tf.sign(u) * mask, g if mode == "gradraw" else c

    def update_moments(i, c):
        if cfg.method == "dlion":
            mom[i].assign(b2 * mom[i] + (1 - b2) * c)
        else:
            mom[i].assign(b1 * mom[i] + (1 - b1) * c)
            var[i].assign(b2 * var[i] + (1 - b2) * tf.square(c))

    def track(i, msg, vote):
        """Diagnostics: sends repeated from the worker's previous step,
        sends, coordinates the vote moves; which ever moved."""
        sent = tf.cast(tf.not_equal(msg, 0), tf.float32)
        hit = tf.cast(tf.not_equal(vote, 0), tf.float32)
        diag.assign_add(tf.stack([tf.reduce_sum(sent * prev[i]),
                                  tf.reduce_sum(sent), tf.reduce_sum(hit)]))
        prev[i].assign(sent)
        moved[i].assign(tf.maximum(moved[i], hit))

    def diagnostics(steps):
        """(repeat fraction, mean moved fraction per step, coverage);
        resets the counters."""
        if cfg.method.startswith("dense") or steps == 0:
            return float("nan"), float("nan"), float("nan")
        rep, sends, hits = (float(v) for v in diag.numpy())
        diag.assign(tf.zeros([3]))
        cover = sum(float(tf.reduce_sum(b)) for b in moved) / n_all
        return rep / max(sends, 1.0), hits / steps / n_all, cover

    def make_step(density):
        ks = tensor_ks(sizes, density, cfg.small_dense)

        @tf.function(jit_compile=JIT)
        def step(st, lr):
            g, loss = worker_grads(st)
            t_adam.assign_add(1.0)
            for i, v in enumerate(xs):
                if cfg.method.startswith("dense"):
                    gm = tf.reduce_mean(g[i], 0)
                    if cfg.method == "dense-adamw":
                        delta = adamw(i, gm, lr)
                    else:
                        delta = lr * tf.sign(b1 * am[i] + (1 - b1) * gm)
                        am[i].assign(b2 * am[i] + (1 - b2) * gm)
                else:
                    msg, m_in = compress(i, g[i], ks[i])
                    vote = tf.reduce_sum(msg, 0)
                    track(i, msg, vote)
                    vote = tf.sign(vote) if cfg.vote == "sign" else vote / m_
                    if cfg.method == "s3gd-adamw":
                        delta = adamw(i, vote, lr)
                    else:
                        delta = lr * vote
                        update_moments(i, m_in)
                flat = tf.reshape(v, [-1])
                v.assign(tf.reshape(flat - delta - lr * cfg.wd * flat,
                                    v.shape))
            return loss
        return step

    @tf.function
    def average_momentum():
        for b in mom:
            b.assign(tf.broadcast_to(tf.reduce_mean(b, 0, keepdims=True),
                                     b.shape))

    @tf.function
    def momentum_cosine():
        flat = tf.concat([b for b in mom], 1)
        unit = tf.math.l2_normalize(flat, 1)
        cos = tf.matmul(unit, unit, transpose_b=True)
        off = tf.reduce_sum(cos) - tf.linalg.trace(cos)
        return off / float(m_ * (m_ - 1))

    evaluate = tf.function(lambda: text.heldout_metrics(
        model, x_test, y_test)[1] / math.log(2.0))
    steps_fns, totals = {}, np.zeros(4)
    avg_bytes = wire_bytes(sizes, 1.0, m_)[3]
    losses, start = [], time.perf_counter()
    for t in range(cfg.steps + 1):
        if t % cfg.eval_every == 0 or t == cfg.steps:
            per = [float(b) for b in totals / max(t, 1)]
            repeat, moved_frac, coverage = diagnostics(len(losses))
            yield {"step": t, "heldout_bpb": float(evaluate()),
                   "repeat_frac": repeat, "moved_frac": moved_frac,
                   "coverage": coverage,
                   "train_loss": float(np.mean(losses)) if losses else
                   float("nan"),
                   "momentum_cosine": float(momentum_cosine())
                   if cfg.method in ("dlion", "dadam") else float("nan"),
                   "density_now": cfg.density_at(min(t, cfg.steps - 1)),
                   "wire_bytes_int32": per[0], "wire_bytes_rice": per[1],
                   "wire_bytes_packed": per[2], "dense_wire_bytes": per[3],
                   "params": n_all,
                   "wall_s": round(time.perf_counter() - start, 1)}
            losses = []
        if t == cfg.steps:
            break
        d = cfg.density_at(t)
        if d not in steps_fns:
            steps_fns[d] = make_step(d)
        losses.append(float(steps_fns[d](tf.constant(starts[t]),
                                          tf.constant(cfg.lr_at(t),
                                                      tf.float32))))
        if cfg.method.startswith("dense"):
            totals += np.array([avg_bytes] * 4)
        else:
            b = np.array(wire_bytes(sizes, d, m_, cfg.small_dense))
            b[:3] += avg_bytes / cfg.avg_every if cfg.avg_every else 0.0
            b[3] = avg_bytes
            totals += b
        if cfg.avg_every and (t + 1) % cfg.avg_every == 0:
            average_momentum()
