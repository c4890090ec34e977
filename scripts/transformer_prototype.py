"""Prototype (issue 24), NOT library code: M simulated workers in one
process, no tf.distribute, the sweep's byte-level GPT on ``pydoc-topics``.

Each step: every worker w computes its gradient g_w on its own batch of
windows (:func:`tf_sparsesign.experiments.text.batch_starts`, the same data
order for every method at a seed); the method turns the M gradients into
one update of the shared weights. Compression and vote in plain TF ops:
per tensor ``K_l = ceil(density * n_l)``, top-K by magnitude with ties to
the lower index (``tf.math.top_k``), a worker's message = the signs at its
K_l positions (0 elsewhere), vote = sign(sum of the M ternary messages)
(unsent coordinates and ties give 0). Weight decay is decoupled:
``x <- x - lr * wd * x`` (Keras' AdamW / Lion), on every tensor.

Methods (``--method``):

* ``dense-adamw`` / ``dense-lion``: the mean gradient into AdamW (Keras'
  defaults: beta 0.9 / 0.999, eps 1e-7, bias correction) / Lion;
* ``s3gd-adamw``: S3GD-MV as the library runs it around AdamW today: memory
  ``e <- e + g``, top-K signs of ``e``, the sent entries cleared, the vote
  fed to AdamW as its gradient (``--memory none``: no memory);
* ``dlion``: worker-side Lion momentum m_w under the vote. Lion direction
  ``u_w = beta1 m_w + (1 - beta1) g_w``; the vote of the messages;
  ``x <- x - lr (vote + wd x)``; ``m_w <- beta2 m_w + (1 - beta2) g_w``.
  At density 1 (every sign sent) this is Distributed Lion (Liu et al.
  2024). Below 1, ``--memory`` says where error feedback sits:

  - ``u`` (a): ``e <- e + u``; send the signs of the top-K of ``|e|``;
    clear the sent entries of e;
  - ``sign`` (b): ``e <- e + sign(u)``; the same (integer magnitudes: ties
    go to the lower index);
  - ``grad`` (c): ``c = e + g`` (the error-compensated gradient);
    ``u = beta1 m + (1 - beta1) c``; send the signs of the top-K of ``|u|``;
    ``e <- c`` with the sent entries cleared; the momentum takes the
    compensated gradient, ``m <- beta2 m + (1 - beta2) c``;
  - ``gradraw`` (c'): as ``grad``, but the momentum takes the raw
    gradient, ``m <- beta2 m + (1 - beta2) g`` (only the message sees the
    memory);
  - ``none`` (d): send the signs of the top-K of ``|u|``.

  All four are Distributed Lion at density 1 (nothing is left unsent).
* ``dadam``: as ``dlion`` with each worker's Adam direction instead of
  Lion's: ``m <- beta1 m + (1 - beta1) g``, ``v <- beta2 v + (1 - beta2)
  g^2`` (defaults 0.9 / 0.999), ``u = m_hat / (sqrt(v_hat) + eps)`` (bias
  corrected); the memory variants and the update ``x <- x - lr (vote +
  wd x)`` are the same. Its sign equals the momentum's, so at density 1 it
  is a distributed signum; below 1 the memory accumulates Adam's
  normalised steps, so top-K picks what Adam would move most.

Schedules: ``--warmup F`` runs the first F of the steps at density 1 (then
the memory starts from 0); ``--density-schedule d0:d1`` steps the density
geometrically from d0 to d1 over the run in ``--stages`` equal stages;
``--avg-every T`` replaces every worker's momentum by the workers' mean
every T steps (a dense fp32 all-reduce of N values, counted in the bytes);
``--lr-schedule cosine`` decays every method's rate to 0;
``--small-dense S`` sends every sign of the tensors of at most S entries
(LayerNorm, biases) whatever the density; ``--vote mean`` steps by
``lr * (sum of the messages) / M`` instead of ``lr * sign(sum)`` (a lone
sender moves its coordinate by lr / M); ``--rate-exponent A``: the rate
at density d is ``lr * (d / d_final) ** -A`` (``lr`` is the final
density's; with a warm-up or schedule the denser steps take smaller
rates).

Logged per evaluation point: held-out bits per byte (all 728 held-out
windows), the training loss (mean over workers, since the last point), the
mean pairwise cosine of the workers' momentum buffers (whole model); for
the voting methods ``repeat_frac`` (of the coordinates a worker sent, the
fraction it had also sent the step before), ``moved_frac`` (coordinates
the vote moved per step / N) and ``coverage`` (coordinates moved at least
once so far / N), all since the last point except coverage; and
bytes per worker per step (wire, ring, M = 4): dense fp32 all-reduce
``2 (M-1)/M * 4N``; sign messages: ``(M-1) * message`` with int32 codes
(4 bytes per code), Rice (``log2(n_l/K_l) + 2.5`` bits per code, per
tensor) and, at density 1, packed ternary (1.6 bits per coordinate).

Usage::

    nice -n 10 python scripts/transformer_prototype.py --method dlion \\
        --density 0.01 --memory u --lrs 1e-3,3e-3,1e-2 --seeds 0 \\
        --out docs/results/transformer-prototype/runs.csv
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _prototype_core as core  # noqa: E402

FIELDS = ("method", "density", "memory", "beta1", "beta2", "wd", "warmup",
          "density_schedule", "avg_every", "lr_schedule", "lr", "seed",
          "step", "steps_total", "heldout_bpb", "train_loss",
          "momentum_cosine", "density_now", "wire_bytes_int32",
          "wire_bytes_rice", "wire_bytes_packed", "dense_wire_bytes",
          "params", "wall_s", "tag", "small_dense", "vote",
          "rate_exponent", "repeat_frac", "moved_frac", "coverage")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", required=True, choices=core.METHODS)
    p.add_argument("--density", type=float, default=1.0)
    p.add_argument("--memory", default="u", choices=core.MEMORIES)
    p.add_argument("--beta1", type=float, default=None,
                   help="default: 0.9 (Lion and AdamW)")
    p.add_argument("--beta2", type=float, default=None,
                   help="default: 0.99 (Lion), 0.999 (AdamW)")
    p.add_argument("--wd", type=float, default=0.1)
    p.add_argument("--warmup", type=float, default=0.0)
    p.add_argument("--density-schedule", default="")
    p.add_argument("--stages", type=int, default=5)
    p.add_argument("--avg-every", type=int, default=0)
    p.add_argument("--small-dense", type=int, default=0)
    p.add_argument("--vote", default="sign", choices=("sign", "mean"))
    p.add_argument("--rate-exponent", type=float, default=0.0)
    p.add_argument("--lr-schedule", default="constant",
                   choices=("constant", "cosine"))
    p.add_argument("--lrs", required=True)
    p.add_argument("--seeds", default="0")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--eval-windows", type=int, default=None)
    p.add_argument("--tag", default="")
    p.add_argument("--out", required=True)
    return p.parse_args(argv)


def done_keys(path):
    if not os.path.exists(path):
        return set()
    with open(path, newline="") as f:
        return {key(r) for r in csv.DictReader(f)
                if r["step"] == r["steps_total"]}


def key(r):
    return tuple(str(r.get(k) or DEFAULTS.get(k, "")) for k in
                 FIELDS[:12] + ("tag", "small_dense", "vote",
                                "rate_exponent"))


#: Values of the columns older CSVs of this script lack.
DEFAULTS = {"small_dense": "0", "vote": "sign", "rate_exponent": "0.0",
            "repeat_frac": "", "moved_frac": "", "coverage": ""}


def main(argv=None):
    a = parse(argv)
    for lr in (float(v) for v in a.lrs.split(",")):
        for seed in (int(s) for s in a.seeds.split(",")):
            cfg = core.Config(
                method=a.method, density=a.density, memory=a.memory,
                beta1=a.beta1, beta2=a.beta2, wd=a.wd, warmup=a.warmup,
                density_schedule=a.density_schedule, stages=a.stages,
                avg_every=a.avg_every, small_dense=a.small_dense,
                vote=a.vote, rate_exponent=a.rate_exponent,
                lr_schedule=a.lr_schedule, lr=lr,
                seed=seed, steps=a.steps, workers=a.workers, batch=a.batch,
                eval_every=a.eval_every, eval_windows=a.eval_windows)
            head = {"method": a.method, "density": a.density,
                    "memory": a.memory if a.method != "dense-adamw" and
                    not a.method.startswith("dense") else "-",
                    "beta1": cfg.b1, "beta2": cfg.b2, "wd": a.wd,
                    "warmup": a.warmup,
                    "density_schedule": a.density_schedule,
                    "avg_every": a.avg_every,
                    "lr_schedule": a.lr_schedule, "lr": lr, "seed": seed,
                    "steps_total": a.steps, "tag": a.tag,
                    "small_dense": a.small_dense, "vote": a.vote,
                    "rate_exponent": a.rate_exponent}
            probe = {**head, "step": a.steps}
            if key({k: _fmt(v) for k, v in probe.items()}) in done_keys(
                    a.out):
                print(f"skip lr={lr:g} seed={seed} (done)")
                continue
            start = time.perf_counter()
            rows = [{**head, **r} for r in core.run(cfg)]
            _append(a.out, rows)
            last = rows[-1]
            print(f"{a.method} d={a.density:g} mem={a.memory} "
                  f"w={a.warmup:g} sched={a.density_schedule or '-'} "
                  f"avg={a.avg_every} small={a.small_dense} vote={a.vote} "
                  f"rexp={a.rate_exponent:g} "
                  f"b={cfg.b1:g}/{cfg.b2:g} lrs={a.lr_schedule} "
                  f"lr={lr:g} seed={seed} tag={a.tag}: "
                  f"bpb={last['heldout_bpb']:.4f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)


def _fmt(v):
    return v if isinstance(v, str) else repr(v)


def _append(path, rows):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    new = not os.path.exists(path)
    if not new:
        with open(path, newline="") as f:
            old = list(csv.DictReader(f))
        if old and tuple(old[0]) != FIELDS:        # an older header
            with open(path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=FIELDS)
                w.writeheader()
                w.writerows({**DEFAULTS, **r} for r in old)
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r[k]) if not isinstance(r[k], float) or
                        math.isfinite(r[k]) else "nan" for k in FIELDS})


if __name__ == "__main__":
    main()
