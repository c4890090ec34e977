"""The ``tf-sparsesign calibrate`` command line (see
:func:`tf_sparsesign.calibrate`).

Run it inside the real job, on every worker at once, with the job's
``TF_CONFIG`` (a multi-worker job: ``MultiWorkerSparseSignStrategy`` from
``TF_CONFIG``), or without one on a single host (every local device)::

  tf-sparsesign calibrate --mlp 784,4096,2048,10 --batch 32 --out prof.json
  tf-sparsesign calibrate --sizes 25.6M --density 0.001 --out prof.json
  tf-sparsesign plan --params 11.6M --workers 4 --profile prof.json

Every worker writes the same profile (the chief's clock, the slowest
worker's time of each measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _model(dims, batch):
    """An MLP of ``dims`` (ReLU; the last is the output) and one replica's
    random batch, or ``(None, None)``."""
    if not dims:
        return None, None
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    layers = [keras.Input((dims[0],))]
    layers += [keras.layers.Dense(h, activation="relu") for h in dims[1:-1]]
    layers.append(keras.layers.Dense(dims[-1]))
    return keras.Sequential(layers), tf.random.normal([batch, dims[0]])


def _calibrate(args: argparse.Namespace) -> int:
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    import tf_sparsesign
    from .. import policy

    settings = dict(density=args.density, wire=args.wire)
    if os.environ.get("TF_CONFIG"):
        strategy = tf_sparsesign.MultiWorkerSparseSignStrategy(**settings)
    else:
        strategy = tf_sparsesign.SparseSignStrategy(**settings)
    with strategy.scope():
        model, batch = _model(args.mlp, args.batch)
    start = time.perf_counter()
    try:
        profile = tf_sparsesign.calibrate(
            strategy, model, batch, args.out, sizes=args.sizes,
            options=args.options.split(",") if args.options else None,
            repeat=args.repeat)
    except ValueError as exc:
        print(f"calibrate: {exc}", file=sys.stderr)
        return 2
    took = time.perf_counter() - start
    print(f"calibrated M = {profile.num_replicas} on "
          f"{len(set(profile.hosts))} host(s) in {took:.1f} s "
          f"({json.dumps({k: round(v, 1) for k, v in profile.stages.items()})}"
          f"); profile: {args.out}")
    fits = profile.collectives
    for kind in policy.profile.KINDS:
        print(f"  {kind:10s} t = max({fits[kind].floor * 1e3:.2f} ms, "
              f"{fits[kind].a * 1e3:.2f} ms + bytes / "
              f"{fits[kind].b / 1e6:.1f} MB/s)")
    return 0


def add_command(sub, count) -> None:
    """Adds ``calibrate`` to an argparse subparsers (``count`` parses
    '25.6M')."""
    p = sub.add_parser("calibrate", help="time this job's collectives and "
                       "this host's compute once: a profile for plan and "
                       "auto (run on every worker)")
    p.add_argument("--out", default="tf_sparsesign_profile.json",
                   help="where the profile goes")
    p.add_argument("--mlp", type=lambda t: [int(v) for v in t.split(",")],
                   default=None, help="time forward+backward and the parts "
                   "at this MLP's sizes, e.g. 784,4096,2048,10")
    p.add_argument("--batch", type=int, default=32, help="batch per "
                   "replica (with --mlp)")
    p.add_argument("--sizes", type=lambda t: [count(v) for v in
                                              t.split(",")], default=None,
                   help="tensor element counts to time the parts at "
                   "(without --mlp), e.g. 100352,128,1280,10")
    p.add_argument("--density", type=float, default=0.01)
    p.add_argument("--wire", default="int32")
    p.add_argument("--options", default="", help="comma list of options "
                   "to time (default: dense and every exchange/codec)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=0,
                   help="TF intra-op threads (0: TensorFlow's default)")
    p.set_defaults(func=_calibrate)
